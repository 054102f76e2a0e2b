"""PrairieLearn's results.json, made from ours: the same grading, in the form its external grader reads.

    python -m grader.prairielearn OURS PRAIRIELEARN
    # run.sh: /grade/results/grader/results.json (ours) -> /grade/results/results.json (PrairieLearn's)

prairielearn/run.sh grades the notebook in /grade/student with gradescope/run_autograder (the same
choice of notebook, the same isolation, and a results.json whatever happens, as on Gradescope),
then runs this on that results.json. `convert` is pure; `main` reads and writes.

PrairieLearn's format (its docs, externalGrading.md, "Grading results"): `score` from 0 to 1,
`gradable`, `message`, `output`, `format_errors`, and `tests`, each with `name`, `description`,
`points`, `max_points`, `message` and `output`. Each of our checks (a function and an aspect) is one
test, with its points. A submission that could not be graded at all (no notebook, several, a file
that is not a notebook, or the grader itself failed) is `gradable: false`: PrairieLearn shows it as
invalid, awards nothing and charges no attempt, as for code that does not compile; the reason is in
`format_errors` and `message`. A mistake in the student's code is graded: its checks lose points.
Standard library only: it must run wherever the grader's results.json can be read.
"""

import json
import math
import os
import sys
from pathlib import Path

# What each aspect compares with the reference (README, "What is graded").
DESCRIPTIONS = {
    "names": "The layers the assignment names (res2a_branch2a, bn2a_branch1, conv1, fc6, ...), each paired with "
             "the reference's layer in its place in the data flow.",
    "shapes": "Every layer's output shape.",
    "params": "Every layer's parameter counts, and the totals.",
    "activations": "The outputs for a fixed seeded input, in inference and in training mode.",
}
# Our results.json's extra_data.error_kind when grading did not happen (grader.grade.failed_result).
NOT_GRADED = ("unreadable", "not graded")
# PrairieLearn refuses a results.json over 1 MB: no text field takes more than MAX_TEXT characters, and
# fewer where the file would still be larger than BUDGET bytes (escaped characters take up to six).
MAX_TEXT = 16_000
BUDGET = 900_000


class Malformed(ValueError):
    """Our results.json is not what the grader writes: a field is missing or of the wrong type."""


def _cut(text, limit=MAX_TEXT):
    text = text if isinstance(text, str) else ("" if text is None else str(text))
    return text if len(text) <= limit else text[: max(0, limit - 40)] + "\n... (cut: too long to show here)"


def _fit(payload):
    """`payload` with its texts cut shorter and shorter until its file is under BUDGET bytes."""
    limit = MAX_TEXT
    while len(json.dumps(payload)) > BUDGET and limit > 100:
        limit //= 2
        payload = dict(payload, message=_cut(payload["message"], limit), output=_cut(payload["output"], limit),
                       tests=[dict(t, message=_cut(t["message"], limit), output=_cut(t["output"], limit))
                              for t in payload["tests"]])
        if "format_errors" in payload:
            payload["format_errors"] = [_cut(e, limit) for e in payload["format_errors"]]
    return payload


def _number(value, what):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Malformed(f"{what} is not a number: {value!r}")
    return value


def not_gradable(reason, output=""):
    """A result that awards nothing and charges no attempt, saying why (its first paragraph) where the
    student looks first; the whole of it, a log's tail included, in `output`."""
    reason = (reason or "").strip() or "the submission could not be graded"
    first = reason.split("\n\n")[0].strip()
    return _fit({"gradable": False, "score": 0.0, "message": _cut(first), "format_errors": [_cut(first)],
                 "output": _cut(output or (reason if reason != first else "")), "tests": []})


def _test(raw, i):
    if not isinstance(raw, dict):
        raise Malformed(f"test {i} is not an object")
    extra = raw.get("extra_data") if isinstance(raw.get("extra_data"), dict) else {}
    name = raw.get("name")
    if not isinstance(name, str):
        raise Malformed(f"test {i} has no name")
    points = _number(raw.get("score"), f"the score of {name}")
    most = _number(raw.get("max_score"), f"the max_score of {name}")
    lines = _cut(raw.get("output")).split("\n", 1)
    return {"name": name, "description": DESCRIPTIONS.get(extra.get("aspect"), ""), "points": points,
            "max_points": most, "message": lines[0], "output": lines[1] if len(lines) > 1 else "",
            "function": extra.get("function") or name.split(":")[0], "aspect": extra.get("aspect") or "",
            "shown": raw.get("visibility", "visible") == "visible"}


def table(tests):
    """Points by function (rows) and aspect (columns), as the grader's terminal report shows them."""
    functions = list(dict.fromkeys(t["function"] for t in tests))
    aspects = list(dict.fromkeys(t["aspect"] for t in tests))
    cell = {(t["function"], t["aspect"]): t for t in tests}
    width = max([len("function"), *map(len, functions)]) + 2
    lines = ["function".ljust(width) + "".join(a.rjust(13) for a in aspects) + "total".rjust(13)]
    for f in functions:
        row = [cell.get((f, a)) for a in aspects]
        got = sum(t["points"] for t in row if t)
        most = sum(t["max_points"] for t in row if t)
        lines.append(f.ljust(width) + "".join((f"{t['points']:g}/{t['max_points']:g}" if t else "-").rjust(13)
                                              for t in row) + f"{got:g}/{most:g}".rjust(13))
    return "\n".join(lines)


def convert(results):
    """PrairieLearn's results for one of ours (the parsed results.json); never raises.

    The score is ours over the points of every check, hidden ones included (PrairieLearn has one
    score); only the checks Gradescope would show now (visibility "visible") are listed as tests.
    """
    if not isinstance(results, dict):
        return not_gradable("the grader's results.json is not a JSON object; tell the course staff")
    extra = results.get("extra_data") if isinstance(results.get("extra_data"), dict) else {}
    if extra.get("error") or extra.get("error_kind") in NOT_GRADED:
        return not_gradable(str(extra.get("error") or results.get("output") or "grading failed"))
    try:
        raw = results.get("tests")
        if not isinstance(raw, list) or not raw:
            raise Malformed("it lists no tests")
        tests = [_test(t, i) for i, t in enumerate(raw)]
        score = _number(results.get("score"), "score")
    except Malformed as exc:
        return not_gradable(f"the grader's results.json is malformed: {exc}; tell the course staff")
    total = sum(t["max_points"] for t in tests)
    fraction = min(1.0, max(0.0, score / total)) if total > 0 else 0.0
    shown = [t for t in tests if t["shown"]]
    return _fit({
        "gradable": True,
        "score": round(fraction, 6),
        "message": _cut(results.get("output")),
        "output": _cut(table(shown)) if shown else "",
        "tests": [{k: t[k] for k in ("name", "description", "points", "max_points", "message", "output")}
                  for t in shown],
    })


def read_results(path):
    """Our results.json at `path`, parsed; a not-gradable result's reason (a str) when there is none to read."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"the grader wrote no results.json ({path}); tell the course staff"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"the grader's results.json cannot be read ({type(exc).__name__}: {exc}); tell the course staff"


def write(path, payload):
    """Write `payload` as `path`, atomically: PrairieLearn never reads half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m grader.prairielearn OURS PRAIRIELEARN  (our results.json, PrairieLearn's to write)",
              file=sys.stderr)
        return 2
    ours = read_results(argv[0])
    payload = not_gradable(ours) if isinstance(ours, str) else convert(ours)
    try:
        write(argv[1], payload)
    except OSError as exc:
        print(f"prairielearn: cannot write {argv[1]}: {exc}", file=sys.stderr)
        return 1
    print(f"prairielearn: score {payload['score']:g}" if payload["gradable"]
          else f"prairielearn: not gradable: {payload['message']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
