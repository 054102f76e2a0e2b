"""Reporters: a GradeResult in, text or Gradescope JSON out. Pure: the CLI does the writing."""

import json

from grader.spec import ASPECTS, FUNCTIONS


def _test_output(check):
    if check.passed:
        return f"All {len(check.outcomes)} cases pass." if check.outcomes else ""
    lines = list(check.messages)
    if check.outcomes:
        lines.insert(0, f"{check.passed_cases} of {len(check.outcomes)} cases pass.")
    return "\n".join(lines)


def results_json(payload):
    """The text of a results.json file: one format wherever it is written (the batch hashes it)."""
    return json.dumps(payload, indent=2) + "\n"


def gradescope(result, visibility="visible", isolation=None):
    """Gradescope's results.json schema: score, output and one test per function and aspect.

    Each test's extra_data names its function and aspect, and the ids of the mistakes
    recognised behind it (grader.diagnosis) and what its checks found, for the class report;
    the top-level extra_data says why grading failed (`error`, `error_kind`) and which limits
    the submission ran into (`limits`): the class report and the gradebook read these fields,
    never the wording of `output`.
    `visibility` is one Gradescope value for every test, or a grader.visibility.Visibility
    giving each test its own. When some tests are not visible, the summary gives the score
    of the visible ones only, so the hidden ones' results do not leak through it.
    `isolation` ({"level": ..., "summary": ...}, grader.sandbox.isolation_info) goes into the
    top-level extra_data: how the student's code was isolated while it was graded.
    """
    of = visibility.of if hasattr(visibility, "of") else (lambda function, aspect: visibility)
    overall = getattr(visibility, "overall", visibility)
    shown = [c for c in result.checks if of(c.function, c.aspect) == "visible"]
    if len(shown) == len(result.checks):
        summary = [f"Score: {result.score:g} / {result.max_score:g}"]
    else:
        summary = [f"Score on the visible checks: {sum(c.score for c in shown):g} / "
                   f"{sum(c.max_score for c in shown):g} (other checks are shown later)"]
    if result.error:
        summary.append(f"Grading failed: {result.error}")
    if result.version:
        summary.append(f"Notebook version: {result.version[2]}")
    summary.extend(result.notes)
    payload = {
        "score": result.score,
        "output": "\n".join(summary),
        "visibility": overall,
        "execution_time": round(result.seconds, 2),
        "tests": [
            {
                "name": f"{c.function}: {c.aspect}",
                "score": c.score,
                "max_score": c.max_score,
                "output": _test_output(c),
                "visibility": of(c.function, c.aspect),
                "extra_data": _test_data(c),
            }
            for c in result.checks
        ],
        "extra_data": {"error": result.error, "error_kind": result.error_kind if result.error else "",
                       "limits": [limit.record() for limit in result.limits]},
    }
    if result.version:
        payload["extra_data"]["version"] = dict(zip(("id", "title", "how"), result.version))
    if isolation:
        payload["extra_data"]["isolation"] = dict(isolation)
    return payload


def _test_data(check):
    """A test's extra_data: its function and aspect, and, as data for the class report, the ids of the
    mistakes recognised behind it, what the checks found (grader.results.Finding) and any limit it hit."""
    data = {"function": check.function, "aspect": check.aspect, "hints": [h.id for h in check.hints],
            "hint_texts": [h.text for h in check.hints]}
    if not check.passed:
        data["findings"] = [f.record() for f in check.findings]
        if check.why:
            data["findings"].append({"issue": check.why, "layer": "", "expected": "", "found": check.limit,
                                     "detail": ""})
    if check.limit:
        data["limit"] = check.limit
    return data


def _size(n):
    return f"{n / 2**30:g} GiB" if n >= 2**30 else f"{n / 2**20:g} MiB"


def caps_line(caps):
    """The caps on each kernel as a whole, in a few words (how each holds is in results.json)."""
    parts = [f"{caps['processes']['limit']} processes and threads" if caps["processes"]["limit"] else
             "no process cap", f"{_size(caps['memory']['limit'])} of memory"]
    if caps["tmpfs"]["limit"]:
        parts.append(f"{_size(caps['tmpfs']['limit'])} per tmpfs")
    return "caps per kernel: " + ", ".join(parts)


def isolation_line(isolation):
    """The terminal's line on how the student's code was isolated, and its caps."""
    caps = isolation.get("caps")
    return f"isolation: {isolation['summary']}" + (f"; {caps_line(caps)}" if caps else "")


def terminal(result, isolation=None):
    """A table of functions by aspects, then every failed check's feedback (and the isolation)."""
    width = max(len(f) for f in FUNCTIONS) + 2
    aspects = [a for a in ASPECTS if any(c.aspect == a for c in result.checks)] or list(ASPECTS)
    header = "function".ljust(width) + "".join(a.rjust(13) for a in aspects) + "total".rjust(13)
    lines = [f"{result.submission}", header, "-" * len(header)]
    by = {(c.function, c.aspect): c for c in result.checks}
    for f in FUNCTIONS:
        row = f.ljust(width)
        got = mx = 0.0
        for a in aspects:
            c = by.get((f, a))
            cell = f"{c.score:g}/{c.max_score:g}" if c else "-"
            row += cell.rjust(13)
            if c:
                got, mx = got + c.score, mx + c.max_score
        lines.append(row + f"{got:g}/{mx:g}".rjust(13))
    lines.append("-" * len(header))
    lines.append("score".ljust(width) + f"{result.score:g}/{result.max_score:g}".rjust(13 * (len(aspects) + 1)))
    if result.error:
        lines += ["", f"Grading failed: {result.error}"]
    if result.version:
        lines.append(f"notebook version: {result.version[2]}")
    for note in result.notes:
        lines.append(f"note: {note}")
    failed = [c for c in result.checks if not c.passed]
    if failed:
        lines.append("")
        lines.append("Feedback:")
        for c in failed:
            lines.append(f"  {c.function} / {c.aspect}:")
            lines += [f"    {m}" for m in c.messages]
    if isolation:
        lines += ["", isolation_line(isolation)]
    return "\n".join(lines)
