"""A real batch writes the class report, a resumed batch rebuilds it, and `grader class` gives the same."""

import json

import pytest

import notebooks
from grader.cli import main

pytestmark = pytest.mark.slow

HANG = "def identity_block(X, f, filters, stage, block):\n    while True:\n        pass\n"


def test_batch_writes_the_class_report_and_a_resumed_batch_rebuilds_it(tmp_path):
    folder, out = tmp_path / "class", tmp_path / "out"
    folder.mkdir()
    (folder / "broken.ipynb").write_bytes(b"\x00 not a notebook")
    notebooks.write(notebooks.filled({"identity_block": HANG}), folder / "hang.ipynb")
    args = ["grade", str(folder), "--out", str(out), "--function-timeout", "3", "--workers", "1", "--no-progress"]
    assert main(args) == 0

    fig = json.loads((out / "class.json").read_text())
    assert fig["submissions"] == 2 and fig["graded"] == 1
    kinds = {p["submission"]: p for p in fig["problems"]}
    assert kinds["broken"]["kind"] == "unreadable"
    assert kinds["hang"]["kind"] == "timeout"  # the kernel's own message, classified
    assert any("took longer than its limit of 3 s" in r for r in kinds["hang"]["reasons"]), kinds["hang"]
    assert kinds["hang"]["report"] == "hang/report.html" and (out / "hang" / "report.html").is_file()
    kept = json.loads((out / "hang" / "graded_code.json").read_text())
    assert "while True" in kept["functions"]["identity_block"]
    page = (out / "class.html").read_text()
    assert "hang" in page and "took longer than its limit of 3 s" in page

    # Resumed: nothing is graded again, and the class report is written from the results as they are.
    results = {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    (out / "class.json").unlink()
    (out / "class.html").unlink()
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")} == results
    assert json.loads((out / "class.json").read_text()) == fig
    assert (out / "class.html").read_text() == page

    # And from the results folder alone.
    (out / "class.json").unlink()
    assert main(["class", str(out)]) == 0
    assert json.loads((out / "class.json").read_text()) == fig
