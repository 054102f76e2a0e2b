"""Recording results on disk: the one place a student's results.json and report.html are written.

Every path that ends in a result (a single grade, a batch, a batch whose grader is not set up,
a batch on a Dask cluster) calls `write_result`, so none can leave a student without both
files. Also here: the batch manifest that makes a batch resumable, and the keys it records
(which grader, which submission bytes), since a result is only as good as what made it.
"""

import hashlib
import html
import json
import os
from pathlib import Path

from grader import expected as expected_outputs
from grader import html_report, report

GRADER_DIR = Path(__file__).parent
MANIFEST = ".grader-manifest.json"


def write_atomic(path, text):
    """Write via a temporary file and rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _report_page(result):
    """The student's HTML report; if rendering fails (a grader bug), a plain page with the text report."""
    try:
        return html_report.render(result)
    except Exception as exc:
        text = html.escape(report.terminal(result))
        return (f"<!doctype html><meta charset=utf-8><title>{html.escape(result.submission)}</title>"
                f"<p>The full report could not be drawn ({html.escape(type(exc).__name__)}).</p><pre>{text}</pre>")


def write_result(folder, result, visibility="visible", isolation=None):
    """Write FOLDER/report.html, then FOLDER/results.json (last: its presence means both are there).

    Returns (the results.json payload, its exact text) for the manifest and the gradebook.
    """
    folder = Path(folder)
    payload = report.gradescope(result, visibility, isolation)
    text = report.results_json(payload)
    write_atomic(folder / "report.html", _report_page(result))
    write_atomic(folder / "results.json", text)
    return payload, text


def grader_fingerprint(expected_dir=expected_outputs.DEFAULT_DIR):
    """A hash of the grader's code and expected outputs: results made by another grader are stale,
    and a Dask worker with another grader is refused."""
    h = hashlib.sha256()
    files = sorted(GRADER_DIR.glob("*.py")) + sorted(GRADER_DIR.glob("versions/**/*"))
    files += sorted(Path(expected_dir).glob("**/*")) + sorted((GRADER_DIR.parent / "solution").glob("*.py"))
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            h.update(str(path.relative_to(path.parents[1])).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def submission_key(path, fingerprint):
    """Names this submission's bytes graded by this grader; an unreadable file has the key of no bytes."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        data = b""
    return hashlib.sha256(fingerprint.encode() + b"\0" + data).hexdigest()


def read_manifest(out):
    """{results folder name: {"submission", "key", "results_sha256"}} of a batch's OUT, {} if none."""
    try:
        return json.loads((Path(out) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def manifest_entry(submission, key, text):
    return {"submission": str(submission), "key": key, "results_sha256": hashlib.sha256(text.encode()).hexdigest()}
