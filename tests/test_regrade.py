"""What a regrade changed: whose score changed (before, after, which checks), on the page and in regrade.csv.

The instructor changes an expected output (the name the first convolution of identity_block
must have) and grades the same folder again into the same OUT. Judged in-process on the
probe's measurements (tests/class_batch.py); the page is read in headless Chromium.
"""

import csv
import dataclasses
import json
import re

import pytest

import browser
import class_batch
import notebooks
from grader import class_files, regrade
from grader.cli import main
from grader.spec import POINTS

NAMES = POINTS["identity_block"]["names"]


def renamed_first_conv(expected):
    """The expected outputs with identity_block's first convolution expected under another name."""
    fm = expected["identity_block"]
    cases = []
    for case in fm.cases:
        first = next(layer for layer in case.layers if layer.kind == "conv2d")
        layers = tuple(dataclasses.replace(layer, name=layer.name + "x") if layer is first else layer
                       for layer in case.layers)
        cases.append(dataclasses.replace(case, layers=layers))
    return {**expected, "identity_block": dataclasses.replace(fm, cases=tuple(cases))}


def _students(expected, eve_fixed=False):
    relu = class_batch._measured("identity-missing-final-relu", expected)
    suffix = class_batch._measured("identity-no-branch-suffix", expected)
    relu_src = class_batch.VARIANT["identity-missing-final-relu"].source()
    full = dict(expected)
    return [
        ("full_amy", notebooks.solved(), full),
        ("full_ben", notebooks.solved(), full),
        ("relu_cat", notebooks.solved(identity_block=relu_src), {**full, "identity_block": relu}),
        ("suffix_dan", notebooks.solved(identity_block=class_batch.VARIANT["identity-no-branch-suffix"].source()),
         {**full, "identity_block": suffix}),
        # Eve hands in a corrected notebook between the two gradings: her own file changed.
        ("eve", notebooks.solved(), full) if eve_fixed else
        ("eve", notebooks.solved(identity_block=relu_src), {**full, "identity_block": relu}),
    ]


def _grade(tmp_path, expected, students, key):
    """Judge every student against `expected`, write the results into the same OUT, then the class report."""
    out, sources = class_batch.write_class(tmp_path, expected, students, key)
    json_path, html_path = class_files.write(out, sources)
    return out, json.loads(json_path.read_text()), html_path


@pytest.fixture(scope="module")
def regraded(tmp_path_factory, expected_outputs):
    """The folder graded, then graded again after the expected output changed (and Eve's notebook did)."""
    tmp = tmp_path_factory.mktemp("regrade")
    _, first, _ = _grade(tmp, expected_outputs, _students(expected_outputs), "first-{}")
    changed = renamed_first_conv(expected_outputs)
    # As a batch does it, the measurements are the same (the kernel gets the same reference tables but for a name).
    out, fig, html_path = _grade(tmp, changed, _students(expected_outputs, eve_fixed=True), "second-{}")
    return tmp, out, first, fig, html_path


def test_first_grading_has_nothing_to_compare(regraded):
    _, out, first, _, _ = regraded
    assert first["regrade"]["compared"] is False


def test_a_changed_expected_output_lists_exactly_the_students_it_affects(regraded):
    _, out, _, fig, _ = regraded
    r = fig["regrade"]
    # Amy, Ben and Cat named that layer as the old expected output said: they lose the names points.
    # Dan named no layer right, before or after: his score stays. Eve's own notebook changed: apart.
    assert [c["submission"] for c in r["changed"]] == ["full_amy", "full_ben", "relu_cat"]
    for c in r["changed"]:
        assert c["after"] == c["before"] - NAMES
        assert c["checks"] == [{"check": "identity_block: names", "before": NAMES, "after": 0}]
        assert c["report"] == f"{c['submission']}/report.html"
    assert [c["submission"] for c in r["file_changed"]] == ["eve"]
    assert r["unchanged"] == 1 and r["new"] == [] and r["gone"] == []
    with open(out / class_files.REGRADE_CSV, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["submission", "what", "before", "after", "checks changed"]
    assert [(row[0], row[1]) for row in rows[1:]] == [("full_amy", "score changed"), ("full_ben", "score changed"),
                                                     ("relu_cat", "score changed"), ("eve", "own file changed")]
    assert rows[1][2:] == ["100", f"{100 - NAMES:g}", f"identity_block: names: {NAMES:g} -> 0"]


def test_a_rebuild_shows_the_same_regrade_and_a_regrade_that_changes_nothing_says_so(regraded, expected_outputs,
                                                                                      tmp_path):
    import shutil

    tmp, out, _, fig, _ = regraded
    copy = tmp_path / "copy"
    shutil.copytree(tmp, copy)
    results = copy / out.name
    assert main(["class", str(results)]) == 0  # the same results: the same "before"
    assert json.loads((results / "class.json").read_text())["regrade"] == fig["regrade"]
    changed = renamed_first_conv(expected_outputs)
    class_batch.write_class(copy, changed, _students(expected_outputs, eve_fixed=True), "third-{}")
    class_files.write(results, {results / n: (copy / "submissions" / f"{n}.ipynb", f"third-{n}")
                                for n in ("full_amy", "full_ben", "relu_cat", "suffix_dan", "eve")})
    again = json.loads((results / "class.json").read_text())["regrade"]
    assert again["compared"] and again["changed"] == [] and again["file_changed"] == [] and again["unchanged"] == 5
    page = (results / "class.html").read_text()
    assert "Graded again: no score changed (5 submissions kept every score)." in page
    assert (results / class_files.REGRADE_CSV).read_text() == "submission,what,before,after,checks changed\n"


@pytest.mark.skipif(browser.CHROMIUM is None, reason=browser.MISSING)
def test_the_regrade_is_on_the_page_in_chromium(regraded, tmp_path):
    _, _, _, fig, html_path = regraded
    _, dom = browser.render(html_path, tmp_path, height=2400)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)).replace("&amp;", "&")
    section = text[text.index("What the last regrade changed"):text.index("Distribution of scores")]
    assert "3 score(s) changed with the grader, the notebooks being the same; 1 kept every score." in section
    for c in fig["regrade"]["changed"]:
        assert f"{c['submission']} {c['before']:g} {c['after']:g} identity_block: names: {NAMES:g} → 0" in section
    own = section[section.index("Their own notebook changed (1)"):]
    eve = fig["regrade"]["file_changed"][0]
    assert own.startswith("Their own notebook changed (1): not the regrade's doing submission before after checks "
                          f"changed eve {eve['before']:g} {eve['after']:g} identity_block: activations: 0 → ")
    assert "suffix_dan" not in section


def test_comparison_tells_a_changed_file_only_when_both_hashes_are_known():
    def snap(score, sha):
        return {"s": {"score": score, "checks": {"a": score}, "notebook_sha256": sha, "key": None}}

    assert regrade.compare(snap(1, "x"), snap(2, "y"))["file_changed"][0]["submission"] == "s"
    assert regrade.compare(snap(1, None), snap(2, "y"))["changed"][0]["checks"] == [
        {"check": "a", "before": 1, "after": 2}]
    assert regrade.compare(snap(1, "x"), snap(1, "x"))["unchanged"] == 1
    both = regrade.compare({}, snap(1, "x"))
    assert both["new"] == [{"submission": "s", "report": "", "after": 1}] and both["changed"] == []
