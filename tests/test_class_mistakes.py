"""Every deduction on the class page is explained: named mistakes first, then what the checks found, one
entry per mistake.

The class: the final pooling left unnamed (two students, and a third who also shifted the
block letters), stage-5 letters shifted, Keras 2's AveragePooling2D without pool_size, and
two mistakes no hint names (the branch suffix left out of the names, twice; the shortcut's
names swapped). Judged in-process on the probe's measurements (tests/class_batch.py), and
the page read in headless Chromium.

Then mistakes that each cost several aspects (class_batch.MULTI_ASPECT): stage 5's identity blocks
with filters [256, 256, 2048] (two students), ResNet50 left at `X = None` (two), convolutional_block
returning None (one). Each is one entry, not one per aspect and issue (10 entries before: 4 + 3 + 3):
first on results data as grader.report writes it (fast), then measured for real (slow).
"""

import dataclasses
import json
import re

import pytest

import browser
import class_batch
import corpus
import notebooks
from grader import class_files, class_report, report
from grader.results import CaseOutcome, Check, Finding, GradeResult
from grader.spec import POINTS

slow = pytest.mark.slow  # ResNet-50 variants are measured

VARIANT = {v.id: v for v in corpus.MISTAKES}
BOTH = corpus.Variant("pool-and-letters", "ResNet50", VARIANT["resnet-avgpool-same-unnamed"].edits
                      + VARIANT["resnet-identity-letters-skip"].edits)


@pytest.fixture(scope="module")
def page(tmp_path_factory, expected_outputs):
    measured = {}

    def student(name, variant):
        if variant.id not in measured:
            measured[variant.id] = corpus.measure(variant, expected_outputs)
        nb = notebooks.solved(**{variant.function: variant.source()})
        return name, nb, {**expected_outputs, variant.function: measured[variant.id]}

    students = [("full_amy", notebooks.solved(), dict(expected_outputs)),
                student("pool_bob", VARIANT["resnet-avgpool-same-unnamed"]),
                student("pool_cat", VARIANT["resnet-avgpool-same-unnamed"]),
                student("letters_dan", VARIANT["resnet-identity-letters-skip"]),
                student("keras2_eve", VARIANT["keras2-avgpool-without-pool-size"]),
                student("suffix_fay", VARIANT["identity-no-branch-suffix"]),
                student("suffix_gil", VARIANT["identity-no-branch-suffix"]),
                student("swap_hal", VARIANT["conv-names-swapped-shortcut"]),
                student("both_ivy", BOTH)]
    out, sources = class_batch.write_class(tmp_path_factory.mktemp("mistakes"), expected_outputs, students)
    json_path, html_path = class_files.write(out, sources)
    return out, json.loads(json_path.read_text()), html_path


def _lost(out):
    """(student, function) for every function that loses points, read from the results themselves."""
    lost = set()
    for results in out.glob("*/results.json"):
        for t in json.loads(results.read_text())["tests"]:
            if t["score"] < t["max_score"]:
                lost.add((results.parent.name, t["extra_data"]["function"]))
    return lost


def _explained(entries):
    return {(s["submission"], f) for e in entries for s in e["submissions"] for f in s["functions"]}


@slow
def test_every_deduction_is_under_a_mistake(page):
    out, fig, _ = page
    lost = _lost(out)
    assert lost == {("pool_bob", "ResNet50"), ("pool_cat", "ResNet50"), ("letters_dan", "ResNet50"),
                    ("keras2_eve", "ResNet50"), ("suffix_fay", "identity_block"), ("suffix_gil", "identity_block"),
                    ("swap_hal", "convolutional_block"), ("both_ivy", "ResNet50")}
    assert _explained(fig["mistakes"]) == lost
    assert fig["deductions"] == {"total": 8, "explained": 8, "unexplained": []}
    # Named hints alone leave the two mistakes no hint names unexplained: the checks' findings explain them.
    named = [m for m in fig["mistakes"] if m["kind"] == "named"]
    assert lost - _explained(named) == {("suffix_fay", "identity_block"), ("suffix_gil", "identity_block"),
                                        ("swap_hal", "convolutional_block")}


@slow
def test_named_mistakes_first_then_what_the_checks_found_each_by_count(page):
    out, fig, _ = page
    entries = [(m["kind"], m["id"], [s["submission"] for s in m["submissions"]]) for m in fig["mistakes"]]
    assert entries[:3] == [("named", "unnamed_pool", ["both_ivy", "pool_bob", "pool_cat"]),
                           ("named", "block_letters", ["both_ivy", "letters_dan"]),
                           ("named", "keras2_pool_size", ["keras2_eve"])]
    found = [(students, m) for kind, _, students in entries[3:] for m in [kind] if kind == "found"]
    assert [s for s, _ in found] == [["suffix_fay", "suffix_gil"], ["swap_hal"]]  # one mistake, one entry
    suffix, swap = fig["mistakes"][3:5]
    assert suffix["title"].startswith("identity_block names: ") and "res2b_branch2a" in suffix["title"]
    assert swap["title"].startswith("convolutional_block names: ") and "res3a_branch1: named 'res3a_branch2a'" in swap["title"]
    assert all((out / s["report"]).is_file() for m in fig["mistakes"] for s in m["submissions"])


@slow
def test_the_named_hints_are_in_the_students_reports_too(page):
    out, fig, _ = page
    hints = {m["id"]: m["example"] for m in fig["mistakes"] if m["kind"] == "named"}
    assert "average_pooling2d" in hints["unnamed_pool"] and "Stage 5" in hints["block_letters"]
    assert "lettered c, d where b, c belong" in hints["block_letters"]
    bob, dan = (out / "pool_bob" / "report.html").read_text(), (out / "letters_dan" / "report.html").read_text()
    assert "has no name of yours" in bob and "lettered c, d where b, c belong" in dan


@slow
@pytest.mark.skipif(browser.CHROMIUM is None, reason=browser.MISSING)
def test_the_page_shows_every_deduction_explained_in_chromium(page, tmp_path):
    _, fig, html_path = page
    _, dom = browser.render(html_path, tmp_path, height=2400)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)).replace("&amp;", "&").replace("&#x27;", "'")
    mistakes = text[text.index("Most common mistakes"):text.index("Identical answers")]
    assert "8 of 8 deductions explained" in mistakes and "Not explained" not in mistakes
    for m in fig["mistakes"]:
        assert m["title"] in mistakes and " ".join(s["submission"] for s in m["submissions"]) in mistakes
    assert mistakes.index("the final pooling left unnamed") < mistakes.index("identity_block names:")


# ----------------------------------------------------------------------------- one mistake, one entry

CONV_ERROR = "TypeError: convolutional_block returned NoneType, expected the block's output tensor"
RESNET_ERROR = "ValueError: All `outputs` values must be KerasTensors. Received: outputs=None"


def _counts(want, got, detail=""):
    return {"expected": f"{want:,} parameters (0 non-trainable)", "found": f"{got:,} parameters (0 non-trainable)",
            "detail": detail}


def _stage5():
    """What the checks find in ResNet50 when stage 5's identity blocks have filters [256, 256, 2048]."""
    shape = {"expected": "(None, 2, 2, 512)", "found": "(None, 2, 2, 256)", "detail": "filters 256 for 512"}
    params = [("total_params", "model", _counts(23_600_006, 17_958_790))]
    for block in "bc":
        params += [("params", f"res5{block}_branch2a", _counts(1_049_088, 524_544, "filters 256 for 512")),
                   ("params", f"bn5{block}_branch2a", _counts(2_048, 1_024)),
                   ("params", f"res5{block}_branch2b", _counts(2_359_808, 590_080, "filters 256 for 512")),
                   ("params", f"bn5{block}_branch2b", _counts(2_048, 1_024)),
                   ("params", f"res5{block}_branch2c", _counts(1_050_624, 526_336))]
    return {"shapes": [("shape", "res5b_branch2a", shape), ("shape", "res5c_branch2a", shape), ("consequence", "", {})],
            "params": params,
            "activations": [("outputs", "res5b_branch2a", {"detail": "its own outputs differ, given the same inputs"})]}


def _failed(error, never_built):
    """What the checks find when a call fails after building some layers: the failure, and no such layers."""
    missing = [("missing", layer, {"expected": "Conv2D"}) for layer in never_built]
    return {"names": missing, "shapes": [("error", "", {"found": error})], "params": missing,
            "activations": [("error", "", {"found": error})]}


def _payload(name, function, found):
    """results.json as grader.report writes it, for a submission whose `function` fails the aspects in `found`
    ({aspect: [(issue, layer, fields)]}) with those findings, and passes everything else."""
    checks = []
    for f, points in POINTS.items():
        for aspect, max_score in points.items():
            findings = tuple(Finding(f"{layer}: {issue}", issue, layer, **fields)
                             for issue, layer, fields in (found.get(aspect, []) if f == function else []))
            checks.append(Check(f, aspect, max_score, (CaseOutcome("default", not findings, (), findings),)))
    return report.gradescope(GradeResult(f"{name}.ipynb", tuple(checks)))


# Left unfinished as students leave it: the stub's placeholder still assigned, or nothing returned.
UNFINISHED_CODE = {
    "ResNet50": "def ResNet50(input_shape=(64, 64, 3), classes=6):\n    X_input = keras.Input(input_shape)\n"
                "    X = None\n    return keras.Model(inputs=X_input, outputs=X)\n",
    "convolutional_block": "def convolutional_block(X, f, filters, stage, block, s=2):\n"
                           "    X = layers.Conv2D(filters[0], (1, 1))(X)\n"}


def _multi_aspect_class(code=True):
    """class_batch.multi_aspect_class as results data: the same students and mistakes, each found as the
    checks find it (the slow test below measures them for real); `code` keeps their graded code."""
    mistakes = {"s5_bob": ("ResNet50", _stage5()), "s5_cat": ("ResNet50", _stage5()),
                "none_dan": ("ResNet50", _failed(RESNET_ERROR, ["avg_pool", "fc6"])),
                "none_eve": ("ResNet50", _failed(RESNET_ERROR, ["avg_pool", "fc6"])),
                "stub_fay": ("convolutional_block", _failed(CONV_ERROR, ["res3a_branch1", "bn3a_branch1"]))}
    subs = [class_report.Submission("full_amy", _payload("full_amy", "", {}), "full_amy/report.html")]
    for name, (function, found) in mistakes.items():
        kept = {function: UNFINISHED_CODE[function]} if code and name.startswith(("none", "stub")) else {}
        subs.append(class_report.Submission(name, _payload(name, function, found), f"{name}/report.html", kept))
    return subs


def _entries(fig):
    """(kind, functions, students, aspects, points) of each entry (None for what an entry does not say)."""
    return [(m["kind"], m["functions"], [s["submission"] for s in m["submissions"]], m.get("aspects"), m.get("points"))
            for m in fig["mistakes"]]


def _lost_points(function, aspects):
    return sum(POINTS[function][a] for a in aspects)


def _all_explained(fig, subs):
    """Every deduction under an entry (the class page's check, grader.class_report.deductions), and the
    entries' points adding up to the points the class lost, per submission too."""
    lost = [(s.name, t["extra_data"]["function"]) for s in subs for t in s.payload["tests"]
            if t["score"] < t["max_score"]]
    assert fig["deductions"]["unexplained"] == [] and fig["deductions"]["total"] == len(set(lost))
    total = sum(t["max_score"] - t["score"] for s in subs for t in s.payload["tests"])
    assert fig["points"] == {"lost": pytest.approx(total), "explained": pytest.approx(total)}
    assert sum(m["points"] for m in fig["mistakes"]) == pytest.approx(total)
    for m in fig["mistakes"]:
        assert sum(s["points"] for s in m["submissions"]) == pytest.approx(m["points"])


ALL = ["names", "shapes", "params", "activations"]
STAGE5 = ["shapes", "params", "activations"]


def test_one_mistake_is_one_entry_across_aspects_and_a_failed_call_takes_what_it_never_built():
    subs = _multi_aspect_class(code=False)
    fig = class_report.figures(subs)
    assert _entries(fig) == [  # 10 entries before: stage 5 in 4 (shapes, params, totals, activations), 3 and 3
        ("found", ["ResNet50"], ["none_dan", "none_eve"], ALL, 2 * _lost_points("ResNet50", ALL)),
        ("found", ["ResNet50"], ["s5_bob", "s5_cat"], STAGE5, 2 * _lost_points("ResNet50", STAGE5)),
        ("found", ["convolutional_block"], ["stub_fay"], ALL, _lost_points("convolutional_block", ALL))]
    _all_explained(fig, subs)
    failed, stage5, block = fig["mistakes"]
    assert failed["title"] == f"ResNet50: the call failed: {RESNET_ERROR}; avg_pool, fc6: no such layer"
    assert block["title"].startswith(f"convolutional_block: the call failed: {CONV_ERROR}; res3a_branch1, bn3a_branch1")
    assert stage5["title"].startswith("ResNet50 shapes, params, activations: res5b_branch2a, res5c_branch2a, "
                                      "res5b_branch2b, res5c_branch2b: filters 256 for 512; bn5b_branch2a")
    assert stage5["example"].endswith("model: other parameter totals")  # the whole model's difference last
    assert {"res5b_branch2a", "bn5c_branch2b", "model"} <= set(stage5["layers"])


def test_a_function_left_unfinished_is_a_named_mistake_of_its_own():
    subs = _multi_aspect_class()
    fig = class_report.figures(subs)
    assert _entries(fig) == [
        ("named", ["ResNet50"], ["none_dan", "none_eve"], ALL, 2 * _lost_points("ResNet50", ALL)),
        ("named", ["convolutional_block"], ["stub_fay"], ALL, _lost_points("convolutional_block", ALL)),
        ("found", ["ResNet50"], ["s5_bob", "s5_cat"], STAGE5, 2 * _lost_points("ResNet50", STAGE5))]
    _all_explained(fig, subs)
    resnet, block, _ = fig["mistakes"]
    assert resnet["title"] == f"ResNet50 {class_report.MISTAKE_TITLES['unfinished']}"
    assert resnet["example"].startswith("ResNet50: `X = None` left from the stub; the call failed: ValueError")
    assert block["example"].startswith("convolutional_block: no value returned; the call failed: TypeError")


def test_other_students_or_other_layers_are_other_entries():
    """Merged only for the same students and the same layers: a mistake on other layers is an entry of its
    own, and so is a difference some other student shares (then it names other students)."""
    renamed = {**_stage5(), "names": [("name", "conv1", {"expected": "conv1", "found": "conv_1"})]}
    only_shapes = {"shapes": _stage5()["shapes"]}
    subs = [class_report.Submission("s5_bob", _payload("s5_bob", "ResNet50", renamed)),
            class_report.Submission("s5_cat", _payload("s5_cat", "ResNet50", renamed)),
            class_report.Submission("s5_gus", _payload("s5_gus", "ResNet50", only_shapes))]
    fig = class_report.figures(subs)
    assert _entries(fig) == [
        ("found", ["ResNet50"], ["s5_bob", "s5_cat", "s5_gus"], ["shapes"], 3 * POINTS["ResNet50"]["shapes"]),
        ("found", ["ResNet50"], ["s5_bob", "s5_cat"], ["names"], 2 * POINTS["ResNet50"]["names"]),
        ("found", ["ResNet50"], ["s5_bob", "s5_cat"], ["params", "activations"],
         2 * _lost_points("ResNet50", ["params", "activations"]))]
    _all_explained(fig, subs)
    # The parameter totals go with the one mistake seen in params, not with the names.
    assert "model" in fig["mistakes"][2]["layers"] and fig["mistakes"][1]["layers"] == ["conv1"]
    assert fig["mistakes"][2]["title"].startswith("ResNet50 params, activations: res5b_branch2a")


@pytest.mark.parametrize("notebook", ["ResNets.ipynb", "2021/Residual_Networks.ipynb",
                                      "current/Residual_Networks.ipynb"])
def test_every_versions_untouched_stub_reads_as_unfinished_and_the_solution_does_not(notebook):
    template = class_files.graded_code_of(notebooks.ROOT / "assignment" / notebook)
    assert {f: class_report._stub_left(src, f) for f, src in template.items()} == {
        "identity_block": "X = None", "convolutional_block": "X = None", "ResNet50": "X = None"}
    assert all(class_report._stub_left(src, f) == "" for f, src in notebooks.solution_sources().items())
    assert class_report._stub_left(UNFINISHED_CODE["convolutional_block"], "convolutional_block") == "returns None"


@pytest.fixture(scope="module")
def multi_aspect(tmp_path_factory, expected_outputs):
    out, sources = class_batch.write_class(tmp_path_factory.mktemp("multi"), expected_outputs,
                                           class_batch.multi_aspect_class(expected_outputs))
    json_path, _ = class_files.write(out, sources)
    return out, json.loads(json_path.read_text())


@slow
def test_measured_multi_aspect_mistakes_are_one_entry_each(multi_aspect):
    out, fig = multi_aspect
    subs = class_files.load(out)
    assert _entries(fig) == [
        ("named", ["ResNet50"], ["none_dan", "none_eve"], ALL, 2 * _lost_points("ResNet50", ALL)),
        ("named", ["convolutional_block"], ["stub_fay"], ALL, _lost_points("convolutional_block", ALL)),
        ("found", ["ResNet50"], ["s5_bob", "s5_cat"], STAGE5, 2 * _lost_points("ResNet50", STAGE5))]
    _all_explained(fig, subs)
    assert "`X_shortcut = None` left from the stub" in fig["mistakes"][1]["example"]
    # Without the graded code, the failed calls are still one entry each, the layers they never built in them.
    codeless = class_report.figures([dataclasses.replace(s, code={}) for s in subs])
    assert [(m["kind"], [s["submission"] for s in m["submissions"]], m["aspects"]) for m in codeless["mistakes"]] == [
        ("found", ["none_dan", "none_eve"], ALL), ("found", ["s5_bob", "s5_cat"], STAGE5), ("found", ["stub_fay"], ALL)]
    _all_explained(codeless, subs)
