"""The class page: self-contained, escaped, and readable in a real browser (as tests/test_html_report.py)."""

import json
import re
import shutil
from html.parser import HTMLParser
from urllib.parse import unquote

import pytest

import browser
import class_batch
from grader import class_files, class_html, class_report


@pytest.fixture(scope="module")
def page(tmp_path_factory, expected_outputs):
    out, sources = class_batch.write_results(tmp_path_factory.mktemp("class"), expected_outputs)
    json_path, html_path = class_files.write(out, sources)
    return out, json.loads(json_path.read_text()), html_path


class Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.hrefs = []

    def handle_starttag(self, tag, attrs):
        self.hrefs += [v for k, v in attrs if k in ("href", "src")]


def test_page_is_self_contained_and_links_only_to_the_reports_beside_it(page):
    out, _, html_path = page
    text = html_path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert not re.search(r"https?://|<script|<link|<img|@import|url\(", text)
    links = Links()
    links.feed(text)
    assert links.hrefs and all(h.endswith("/report.html") for h in links.hrefs)
    assert all((out / unquote(h)).is_file() for h in links.hrefs)


def test_student_text_is_escaped():
    def sub(name, body):
        code = {"identity_block": f"def identity_block(X, f, filters, stage, block):\n    return {body}\n"}
        payload = {"score": 0, "output": "Grading failed: <b>bad</b> is not a notebook", "tests": []}
        return class_report.Submission(name, payload, f"{name}/report.html", code)

    subs = [sub(f"<i>eve{i}</i>", "'<script>x</script>'") for i in range(2)] + [sub(f"s{i}", "X") for i in range(3)]
    text = class_html.render(class_report.figures(subs), title="<title>")
    assert "<script>" not in text and "<i>eve" not in text and "<b>bad" not in text
    assert "&lt;i&gt;eve0&lt;/i&gt;" in text and "&lt;script&gt;x&lt;/script&gt;" in text
    assert 'href="%3Ci%3Eeve0%3C/i%3E/report.html"' in text  # a link that works whatever the name holds


def test_sections_in_order_problems_first(page):
    _, fig, html_path = page
    text = html_path.read_text()
    order = [text.index(f'id="{s}"') for s in ("problems", "scores", "pass-rates", "mistakes", "identical")]
    assert order == sorted(order)
    assert text.count('<td class="rate') == 12
    assert "<svg" in text and text.count("<rect") == len(fig["scores"]["histogram"])


@pytest.mark.skipif(browser.CHROMIUM is None, reason=browser.MISSING)
def test_page_renders_in_headless_chromium(page, tmp_path):
    out, fig, html_path = page
    png, dom = browser.render(html_path, tmp_path, height=2400)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    # The histogram was drawn: the screenshot holds the bars' colours (full marks green, the rest blue).
    from PIL import Image
    colours = {rgb for _, rgb in Image.open(png).convert("RGB").getcolors(maxcolors=1 << 20)}
    assert (0x2E, 0x8B, 0x57) in colours and (0x31, 0x66, 0xB0) in colours

    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", dom)).replace("&amp;", "&")
    s = fig["scores"]
    assert f"11 submissions, 10 graded; 2 could not be graded or hit a limit" in text
    assert f"mean {s['mean']:g}" in text and f"median {s['median']:g}" in text
    problems = text[text.index("Could not be graded or hit a limit (2)"):text.index("Distribution of scores")]
    assert "broken unreadable broken.ipynb is not a notebook" in problems
    assert "slow timeout " + class_batch.TIMEOUT in problems
    assert "no ReLU after the Add" in text and "relu_dan relu_eve relu_fay" in text
    identical = text[text.index("Identical answers, worth a look"):]
    assert identical.index("twin_hal") < identical.index("relu_dan") < identical.index("full_anna")
    assert "return keras.ops.relu(X + X_shortcut)" in identical and "only this group has it" in identical
    assert "The most common version: 3 students" in identical
    for cell in ("identity_block", "convolutional_block", "ResNet50", "activations", "60%", "6 of 10"):
        assert cell in text
    import os
    keep = os.environ.get("CLASS_REPORT_SCREENSHOT")
    if keep:  # for a human look: CLASS_REPORT_SCREENSHOT=/tmp/class.png pytest tests/test_class_html.py
        shutil.copyfile(png, keep)
