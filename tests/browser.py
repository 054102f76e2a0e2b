"""Headless Chromium for the HTML pages' tests: a screenshot and the rendered DOM of one page."""

import shutil
import subprocess

CHROMIUM = shutil.which("chromium")
MISSING = "chromium is not installed: run `make browser` (scripts/install-chromium.sh)"


def render(page, tmp_path, height):
    """(screenshot PNG path, DOM text) of the page at `page` in a 1280 px wide window, offline."""
    png = tmp_path / f"{page.stem}.png"
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", f"--window-size=1280,{height}"]
    subprocess.run(flags + [f"--screenshot={png}", page.as_uri()], check=True, capture_output=True, timeout=120)
    dom = subprocess.run(flags + ["--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    return png, dom
