"""The class report's figures, from a results folder as a batch leaves it (tests/class_batch.py)."""

import json
import re
import shutil
import statistics

import pytest

import class_batch
import corpus
from grader import class_files, class_html, class_report, diagnosis, grade, probe, report
from grader.cli import main
from grader.judge import judge
from grader.measurement import FunctionMeasurement
from grader.spec import ASPECTS, FUNCTIONS, POINTS

RELU_COST = POINTS["identity_block"]["activations"]
LETTER_COST = POINTS["convolutional_block"]["names"]
TIMEOUT_COST = sum(POINTS["identity_block"].values())


@pytest.fixture(scope="module")
def batch(tmp_path_factory, expected_outputs):
    out, sources = class_batch.write_results(tmp_path_factory.mktemp("class"), expected_outputs)
    class_files.write(out, sources)
    return out, sources, json.loads((out / "class.json").read_text())


def test_not_gradable_and_limit_hit_submissions_come_with_reason_and_link(batch):
    out, _, fig = batch
    assert [(p["submission"], p["kind"]) for p in fig["problems"]] == [("broken", "unreadable"), ("slow", "timeout")]
    broken, slow = fig["problems"]
    assert "not a notebook" in broken["reasons"][0]
    assert slow["reasons"] == [class_batch.TIMEOUT]
    assert all((out / p["report"]).is_file() for p in fig["problems"])
    assert fig["submissions"] == 11 and fig["graded"] == 10


def test_scores_histogram_mean_and_median(batch):
    _, _, fig = batch
    scores = [0, 100 - TIMEOUT_COST] + [100] * 5 + [100 - RELU_COST] * 3 + [100 - LETTER_COST]
    assert sorted(s["score"] for s in fig["scores"]["per_submission"]) == sorted(scores)
    assert fig["scores"]["mean"] == round(statistics.fmean(scores), 2)
    assert fig["scores"]["median"] == statistics.median(scores)
    assert fig["scores"]["full_marks"] == 5
    assert fig["scores"]["histogram"] == class_report.histogram([s / 100 for s in scores])
    assert sum(fig["scores"]["histogram"]) == 11 and fig["scores"]["histogram"][-1] == 5


def test_histogram_bins_are_tenths_and_full_marks_alone():
    assert class_report.histogram([0, 0.0999, 0.1, 0.95, 0.9999, 1.0, 1.0]) == [2, 1, 0, 0, 0, 0, 0, 0, 0, 2, 2]


def test_pass_rates_cover_the_twelve_checks_over_graded_submissions(batch):
    _, _, fig = batch
    cells = {(c["function"], c["aspect"]): c for c in fig["pass_rates"]}
    assert set(cells) == {(f, a) for f in FUNCTIONS for a in ASPECTS}
    assert all(c["graded"] == 10 for c in cells.values())  # the unreadable file is not in the rates
    assert cells[("identity_block", "activations")]["passed"] == 10 - 3 - 1  # the relu mistake and the timeout
    assert cells[("identity_block", "names")]["passed"] == 9
    assert cells[("convolutional_block", "names")]["passed"] == 9
    assert cells[("ResNet50", "params")]["rate"] == 1.0
    assert cells[("identity_block", "activations")]["mean_points"] == round(RELU_COST * 6 / 10, 2)


def test_most_common_mistakes_with_counts_and_links(batch):
    _, _, fig = batch
    named = [(m["id"], m["students"]) for m in fig["mistakes"] if m["kind"] == "named"]
    assert named == [("missing_final_relu", 3), ("letter_l", 1)]
    assert fig["mistakes"][:2] == [m for m in fig["mistakes"] if m["kind"] == "named"]  # named ones first
    relu = fig["mistakes"][0]
    assert relu["title"] == class_report.MISTAKE_TITLES["missing_final_relu"]
    assert [s["submission"] for s in relu["submissions"]] == ["relu_dan", "relu_eve", "relu_fay"]
    assert relu["functions"] == ["identity_block"] and "ReLU after the Add" in relu["example"]
    # The file that is no notebook and the timeout are deductions too, each under its own entry.
    rest = {m["id"]: [s["submission"] for s in m["submissions"]] for m in fig["mistakes"][2:]}
    assert rest == {"error:unreadable": ["broken"], "found:identity_block::limit::hit the timeout limit": ["slow"]}
    assert fig["deductions"] == {"total": 3 + 1 + 1 + 3, "explained": 8, "unexplained": []}


def test_every_mistake_the_diagnosis_names_has_a_title():
    source = open(diagnosis.__file__).read()
    ids = set(re.findall(r'_hint\("(\w+)"', source)) | set(re.findall(r'return "(\w+)", \(', source))
    ids |= {f"{kind}_{arg}" for kind in ("hard_coded", "default") for arg in diagnosis.ARGUMENT_OF.values()}
    ids |= set(corpus.HINTS.values())
    assert ids - set(class_report.MISTAKE_TITLES) == set()


def test_identical_uncommon_answers_come_first_and_the_common_one_last(batch):
    _, _, fig = batch
    groups = fig["identical"]["groups"]
    members = [[m["submission"] for m in g["members"]] for g in groups]
    assert members == [["twin_hal", "twin_ivy"], ["relu_dan", "relu_eve", "relu_fay"], ["full_anna", "full_ben", "full_cleo"]]
    assert groups[0]["uncommonness"] > groups[1]["uncommonness"] > 0 and groups[2]["most_common"]
    added = [d["line"].strip() for d in groups[0]["differences"] if d["change"] == "added"]
    assert "return keras.ops.relu(X + X_shortcut)" in added
    assert fig["identical"]["compared"] == 10 and fig["identical"]["without_code"] == 1


def test_rebuilt_from_the_results_folder_alone_gives_the_same_report(batch, tmp_path):
    """`python -m grader class OUT` with the notebooks gone: the graded code was kept beside each result."""
    out, sources, fig = batch
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "class.json").unlink()
    (copy / "class.html").unlink()
    assert all((copy / f.name / class_files.CODE_FILE).is_file() for f in sources if f.name != "broken")
    assert main(["class", str(copy)]) == 0
    assert json.loads((copy / "class.json").read_text()) == fig
    assert (copy / "class.html").read_text().startswith("<!DOCTYPE html>")


def test_kept_code_of_a_regraded_submission_is_read_again(batch, tmp_path):
    out, sources, _ = batch
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    twin = next(f for f in sources if f.name == "twin_ivy")
    notebook, _ = sources[twin]
    (copy / "class.json").unlink()
    # The same key: the kept code is used even when the notebook is gone.
    kept = class_files.load(copy, {copy / "twin_ivy": (tmp_path / "gone.ipynb", "key-of-twin_ivy")})
    assert "keras.ops.relu" in next(s for s in kept if s.name == "twin_ivy").code["identity_block"]
    # A new key (the submission changed and was graded again): the code is read from the notebook again.
    relu = next(f for f in sources if f.name == "relu_dan")
    again = class_files.load(copy, {copy / "twin_ivy": (sources[relu][0], "a-new-key")})
    assert "keras.ops.relu" not in next(s for s in again if s.name == "twin_ivy").code["identity_block"]
    assert json.loads((copy / "twin_ivy" / class_files.CODE_FILE).read_text())["key"] == "a-new-key"


def test_unreadable_results_json_is_listed_not_lost(batch, tmp_path):
    out, _, _ = batch
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "relu_dan" / "results.json").write_text("{ half a file")
    fig = class_report.figures(class_files.load(copy))
    assert ("relu_dan", "not graded") in [(p["submission"], p["kind"]) for p in fig["problems"]]


@pytest.mark.parametrize("measured, kind", [
    (grade.measurement_from_outputs("ResNet50", []), "no result"),
    (grade.measurement_from_outputs("ResNet50", [{"output_type": "error", "ename": "MemoryError",
                                                  "evalue": "Unable to allocate 4.00 GiB"}]), "memory"),
    (grade.measurement_from_outputs("ResNet50", [{"output_type": "display_data",
                                                  "data": {probe.WIRE_MIMETYPE: {"function": 3}}}]), "no result"),
    (FunctionMeasurement("ResNet50", missing="measuring ResNet50 took longer than its limit of 120 s",
                         limit="timeout"), "timeout"),  # a CellRun's limit, as grader.grade passes it on
    (FunctionMeasurement("ResNet50", missing="worded in any other way", limit="crash"), "crash"),
])
def test_limits_are_read_from_the_results_data_not_their_wording(measured, kind, expected_outputs):
    result = judge("s.ipynb", expected_outputs, {**expected_outputs, "ResNet50": measured})
    sub = class_report.Submission("s", report.gradescope(result))
    [problem] = class_report.problems([sub])
    assert problem["kind"] == kind and measured.missing in problem["reasons"][0]
    assert sub.payload["extra_data"]["limits"] == [{"kind": kind, "reason": measured.missing, "function": "ResNet50"}]
    # The output's wording plays no part: the same payload with its texts reworded is classified the same.
    reworded = json.loads(json.dumps(sub.payload))
    reworded["output"] = "Score: see below"
    for t in reworded["tests"]:
        t["output"] = "reworded"
    reworded["extra_data"]["limits"][0]["reason"] = "ResNet50: reworded"
    assert class_report.problems([class_report.Submission("s", reworded)])[0] == {
        "submission": "s", "kind": kind, "reasons": ["ResNet50: reworded"], "score": result.score, "report": ""}


def test_a_student_exception_is_not_a_limit(expected_outputs):
    measured = grade.measurement_from_outputs("ResNet50", [{"output_type": "error", "ename": "NameError",
                                                           "evalue": "name 'Conv2D' is not defined"}])
    result = judge("s.ipynb", expected_outputs, {**expected_outputs, "ResNet50": measured})
    assert class_report.problems([class_report.Submission("s", report.gradescope(result))]) == []


def test_class_command_refuses_a_folder_without_results(tmp_path, capsys):
    assert main(["class", str(tmp_path)]) == 2
    assert "no <submission>/results.json" in capsys.readouterr().err


def test_isolation_of_the_kernels_is_summed_up_with_its_warnings():
    def sub(name, level, warning=""):
        info = {"level": level, "summary": "...", **({"warning": warning} if warning else {})}
        return class_report.Submission(name, {"score": 0, "output": "", "tests": [], "extra_data": {"isolation": info}})

    weak = "warning: bubblewrap is not usable here"
    fig = class_report.figures([sub("a", "bubblewrap"), sub("b", "bubblewrap"), sub("c", "namespaces", weak),
                                class_report.Submission("d", {"score": 0, "output": "", "tests": []})])
    assert fig["isolation"] == {"levels": {"bubblewrap": 2, "namespaces": 1, "not recorded": 1}, "warnings": [weak]}
    page = class_html.render(fig)
    assert "bubblewrap (2), namespaces (1), not recorded (1)" in page and f'<p class="error">{weak}</p>' in page
