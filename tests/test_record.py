"""One function records a result (grader.record.write_result), so no path leaves a student without
results.json and report.html: a single grade, a batch, and a batch whose grader is not set up."""

import json

from grader import record
from grader.cli import main
from grader.grade import failed_result


def test_a_result_is_recorded_with_its_report_even_when_the_report_cannot_be_drawn(tmp_path, monkeypatch):
    result = failed_result("nb.ipynb", "nb.ipynb is not a notebook")
    payload, text = record.write_result(tmp_path / "a", result, isolation={"level": "none", "summary": "none"})
    assert json.loads((tmp_path / "a" / "results.json").read_text()) == payload and text.endswith("\n")
    assert "is not a notebook" in (tmp_path / "a" / "report.html").read_text()

    def broken(result):
        raise RuntimeError("a grader bug")

    monkeypatch.setattr("grader.html_report.render", broken)
    record.write_result(tmp_path / "b", result)
    page = (tmp_path / "b" / "report.html").read_text()
    assert "could not be drawn (RuntimeError)" in page and "is not a notebook" in page
    assert json.loads((tmp_path / "b" / "results.json").read_text())["score"] == 0


def test_a_batch_whose_expected_outputs_are_missing_still_records_every_student(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "a.ipynb").write_text("{}")
    (folder / "b.ipynb").write_text("not json")
    out = tmp_path / "out"
    assert main(["grade", str(folder), "--out", str(out), "--expected", str(tmp_path / "nowhere"), "--no-progress"]) == 0
    assert "Grading failed" in capsys.readouterr().out
    manifest = record.read_manifest(out)
    assert sorted(manifest) == ["a", "b"]
    for name in ("a", "b"):
        r = json.loads((out / name / "results.json").read_text())
        assert r["score"] == 0 and "the grader is not set up" in r["output"]
        assert "the grader is not set up" in (out / name / "report.html").read_text()
    assert (out / "gradebook.csv").read_text().count("\n") == 3
    assert json.loads((out / "class.json").read_text())["submissions"] == 2
    assert all(entry["key"] is None for entry in manifest.values())  # graded by no one: graded next time

    # Once the grader is set up, the same command grades them (here: each found not to be a notebook).
    assert main(["grade", str(folder), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    for name in ("a", "b"):
        r = json.loads((out / name / "results.json").read_text())
        assert "not set up" not in r["output"] and "not a notebook" in r["output"], r["output"]
    assert all(entry["key"] for entry in record.read_manifest(out).values())
