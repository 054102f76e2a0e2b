"""OUT/class.json and OUT/class.html, rebuilt from a results folder: the class report's file side.

Reads every OUT/<submission>/results.json (and the graded code kept beside it), computes
the figures (grader.class_report) and renders the page (grader.class_html), with what
changed since the last grading of the same folder (grader.regrade; OUT/regrade.csv). The graded code
is taken from the submitted notebook once and kept as OUT/<submission>/graded_code.json
with the submission's key from the batch manifest, so a rebuild needs the notebooks only
for submissions graded before there was such a file.
"""

import csv
import hashlib
import io
import json
from pathlib import Path

from grader import class_html, class_report, regrade, similarity, versions
from grader.errors import SubmissionError
from grader.record import read_manifest, write_atomic
from grader.submission import extract_definitions, read_notebook

CODE_FILE = "graded_code.json"
JSON_FILE = "class.json"
HTML_FILE = "class.html"
REGRADE_CSV = "regrade.csv"
REGRADE_STATE = ".grader-regrade.json"  # the scores the class report was last written with, and those before
# The assignment's own stubs, in every notebook version: a function left as its template had it is not an answer.
TEMPLATE = tuple(versions.ROOT / v.notebook for v in map(versions.get, versions.ids()))


def graded_code_of(path):
    """{function: graded source or None} of a notebook; {} when it cannot be read."""
    try:
        extraction = extract_definitions(read_notebook(Path(path)))
    except (SubmissionError, OSError, ValueError, RecursionError, MemoryError):
        return {}
    return similarity.graded_sources([source for _, source in extraction.cells])


def template_version(paths=TEMPLATE):
    """{function: the normalised graded code of each template (one path, or several: a class may mix the
    notebook's versions)}, or None when there is no template."""
    paths = [Path(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths or ()) if Path(p).is_file()]
    if not paths:
        return None
    out = {}
    for path in paths:
        for f, src in graded_code_of(path).items():
            if src:
                out.setdefault(f, set()).add(similarity.normalise(src))
    return {f: frozenset(codes) for f, codes in out.items()}


def _code(folder, notebook, key):
    """The folder's graded code: kept from before when its key still matches, else read from the notebook and kept."""
    kept = folder / CODE_FILE
    try:
        data = json.loads(kept.read_text())
        if key is None or data.get("key") == key:
            return data.get("functions", {})
    except (OSError, ValueError, AttributeError):
        pass
    if notebook is None or not Path(notebook).exists():
        return {}
    functions = graded_code_of(notebook)
    write_atomic(kept, json.dumps({"key": key, "functions": functions}, indent=1))
    return functions


def _sources(out, sources=None):
    """{results folder name: (notebook, key)}: as the batch gives them, else as its manifest in `out` records them."""
    manifest = read_manifest(out)
    given = {Path(k).name: v for k, v in (sources or {}).items()}
    found = {name: (entry.get("submission"), entry.get("key")) for name, entry in manifest.items()
             if isinstance(entry, dict)}
    return {**found, **given}


def load(out, sources=None):
    """A class_report.Submission per results folder in `out`.

    `sources` maps a results folder to its (notebook, key), as a batch knows them; otherwise
    the batch manifest in `out` says which notebook each folder came from.
    """
    out = Path(out)
    known = _sources(out, sources)
    subs = []
    for results in sorted(out.glob("*/results.json")):
        folder = results.parent
        try:
            payload = json.loads(results.read_text())
        except (OSError, ValueError) as exc:
            why = f"its results.json cannot be read ({exc})"
            payload = {"score": 0, "output": f"Grading failed: {why}", "tests": [],
                       "extra_data": {"error": why, "error_kind": "not graded", "limits": []}}
        notebook, key = known.get(folder.name, (None, None))
        report = f"{folder.name}/report.html" if (folder / "report.html").is_file() else ""
        subs.append(class_report.Submission(folder.name, payload, report, _code(folder, notebook, key)))
    return subs


def notebook_hashes(out, subs, sources=None):
    """{submission: sha256 of its notebook's bytes, or None where the notebook cannot be read}."""
    known = _sources(out, sources)
    hashes = {}
    for s in subs:
        notebook = known.get(s.name, (None, None))[0]
        try:
            hashes[s.name] = hashlib.sha256(Path(notebook).read_bytes()).hexdigest() if notebook else None
        except OSError:
            hashes[s.name] = None
    return hashes


def regrade_comparison(out, subs, sources=None):
    """What changed since the scores the class report was last written with (grader.regrade).

    The snapshot in OUT/.grader-regrade.json keeps the scores of the last two gradings: a rebuild
    of the same results compares with the same "before"; a regrade (new result keys) moves it on.
    """
    path = Path(out) / REGRADE_STATE
    try:
        state = json.loads(path.read_text())
        kept_before, kept_now = state.get("before"), state["now"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        kept_before, kept_now = None, None
    keys = {name: key for name, (_, key) in _sources(out, sources).items()}
    now = regrade.carry_known(regrade.snapshot(subs, notebook_hashes(out, subs, sources), keys), kept_now)
    before = kept_before if kept_now is not None and regrade.same_grading(kept_now, now) else kept_now
    write_atomic(path, json.dumps({"before": before, "now": now}, indent=1, sort_keys=True))
    return regrade.compare(before, now, {s.name: s.report for s in subs})


def write(out, sources=None, template=TEMPLATE):
    """Rebuild OUT/class.json and OUT/class.html (and OUT/regrade.csv after a regrade); return their paths."""
    out = Path(out)
    subs = load(out, sources)
    figures = class_report.figures(subs, template_version(template))
    figures["regrade"] = regrade_comparison(out, subs, sources)
    if figures["regrade"]["compared"]:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(regrade.csv_rows(figures["regrade"]))
        write_atomic(out / REGRADE_CSV, buf.getvalue())
    write_atomic(out / JSON_FILE, json.dumps(figures, indent=1) + "\n")
    write_atomic(out / HTML_FILE, class_html.render(figures, title=out.resolve().name))
    return out / JSON_FILE, out / HTML_FILE
