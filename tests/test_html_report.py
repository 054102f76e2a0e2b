"""The HTML feedback page: self-contained, escaped, highlighting what differs, and readable in a real browser."""

import re
import shutil

import pytest

import browser
import corpus
from grader import html_report
from grader.judge import judge
from grader.measurement import FunctionMeasurement
from grader.results import LAYER_COLUMNS
from test_corpus import measure_variant

MISTAKE = {v.id: v for v in corpus.MISTAKES}


@pytest.fixture(scope="module")
def result(expected_outputs):
    """Two typical mistakes graded in-process; ResNet50 left undefined."""
    measured = {
        "identity_block": measure_variant(MISTAKE["identity-missing-final-relu"], expected_outputs),
        "convolutional_block": measure_variant(MISTAKE["conv-letter-l-shortcut"], expected_outputs),
        "ResNet50": FunctionMeasurement("ResNet50", missing="ResNet50 is not defined"),
    }
    return judge("alice <b>.ipynb", expected_outputs, measured, ("a cell that trains was skipped",))


def test_page_is_self_contained_and_escapes_student_text(result):
    page = html_report.render(result)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://|<script|<link|<img|@import|url\(", page)
    assert "alice &lt;b&gt;.ipynb" in page and "alice <b>" not in page


def test_page_shows_score_checks_hints_and_side_by_side_layers(result):
    page = html_report.render(result)
    assert f"Score: {result.score:g} / {result.max_score:g}" in page
    for c in result.checks:
        assert f"{c.aspect}: {c.score:g} / {c.max_score:g}" in page
    assert "should pass through a ReLU after the Add" in page
    assert "ResNet50 is not defined" in page
    assert all(f"<th>{c}</th>" in page for c in LAYER_COLUMNS[1:])
    # the misnamed shortcut: the expected name beside the found one, both highlighted
    assert "<td class=\"diff\">res3a_branch1</td>" in page and '<td class="sep diff">res3a_branchl</td>' in page


def test_layer_tables_mark_only_the_cells_that_differ(result):
    table = next(t for t in result.tables if t.function == "convolutional_block" and t.case == "s=2")
    flagged = {row.expected[0]: row.differs for row in table.rows if row.differs}
    assert flagged == {"res3a_branch1": (0,), "bn3a_branch1": (0,)}
    block = next(t for t in result.tables if t.function == "identity_block")
    assert any(not row.found for row in block.rows)  # the missing final ReLU has no partner
    assert next(t for t in result.tables if t.function == "identity_block").differences >= 1


@pytest.mark.skipif(browser.CHROMIUM is None, reason=browser.MISSING)
def test_page_renders_in_headless_chromium(result, tmp_path):
    page = tmp_path / "report.html"
    page.write_text(html_report.render(result))
    png, dom = browser.render(page, tmp_path, height=2000)
    assert png.is_file() and png.stat().st_size > 20_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = re.sub(r"<[^>]+>", " ", dom)
    assert f"Score: {result.score:g} / {result.max_score:g}" in text
    for name in ("res2b_branch2a", "res3a_branch1", "res3a_branchl", "bn3a_branchl"):
        assert name in text
    keep = pytest.importorskip("os").environ.get("HTML_REPORT_SCREENSHOT")
    if keep:  # for a human look: HTML_REPORT_SCREENSHOT=/tmp/report.png pytest tests/test_html_report.py
        shutil.copyfile(png, keep)
