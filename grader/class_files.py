"""OUT/class.json and OUT/class.html, rebuilt from a results folder: the class report's file side.

Reads every OUT/<submission>/results.json (and the graded code kept beside it), computes
the figures (grader.class_report) and renders the page (grader.class_html). The graded code
is taken from the submitted notebook once and kept as OUT/<submission>/graded_code.json
with the submission's key from the batch manifest, so a rebuild needs the notebooks only
for submissions graded before there was such a file.
"""

import json
from pathlib import Path

from grader import class_html, class_report, similarity
from grader.batch import MANIFEST, write_atomic
from grader.errors import SubmissionError
from grader.submission import extract_definitions, read_notebook

CODE_FILE = "graded_code.json"
JSON_FILE = "class.json"
HTML_FILE = "class.html"
# The assignment's own stubs: a function left as the template had it is not an answer.
TEMPLATE = Path(__file__).resolve().parent.parent / "assignment" / "ResNets.ipynb"


def graded_code_of(path):
    """{function: graded source or None} of a notebook; {} when it cannot be read."""
    try:
        extraction = extract_definitions(read_notebook(Path(path)))
    except (SubmissionError, OSError, ValueError, RecursionError, MemoryError):
        return {}
    return similarity.graded_sources([source for _, source in extraction.cells])


def template_version(path=TEMPLATE):
    """The template's normalised graded code, or None when there is no template."""
    if path is None or not Path(path).is_file():
        return None
    return {f: similarity.normalise(src) for f, src in graded_code_of(path).items() if src}


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


def load(out, sources=None):
    """A class_report.Submission per results folder in `out`.

    `sources` maps a results folder to its (notebook, key), as a batch knows them; otherwise
    the batch manifest in `out` says which notebook each folder came from.
    """
    out = Path(out)
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, ValueError):
        manifest = {}
    sources = {Path(k).name: v for k, v in (sources or {}).items()}
    subs = []
    for results in sorted(out.glob("*/results.json")):
        folder = results.parent
        try:
            payload = json.loads(results.read_text())
        except (OSError, ValueError) as exc:
            payload = {"score": 0, "output": f"Grading failed: its results.json cannot be read ({exc})", "tests": []}
        entry = manifest.get(folder.name, {})
        notebook, key = sources.get(folder.name, (entry.get("submission"), entry.get("key")))
        report = f"{folder.name}/report.html" if (folder / "report.html").is_file() else ""
        subs.append(class_report.Submission(folder.name, payload, report, _code(folder, notebook, key)))
    return subs


def write(out, sources=None, template=TEMPLATE):
    """Rebuild OUT/class.json and OUT/class.html; return their paths."""
    out = Path(out)
    figures = class_report.figures(load(out, sources), template_version(template))
    write_atomic(out / JSON_FILE, json.dumps(figures, indent=1) + "\n")
    write_atomic(out / HTML_FILE, class_html.render(figures, title=out.resolve().name))
    return out / JSON_FILE, out / HTML_FILE
