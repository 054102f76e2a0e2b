"""The class at a glance: the figures of OUT/class.json, from the submissions' results.json payloads. Pure.

Everything is computed from what the batch wrote for each submission (Gradescope's
results.json, and the graded code for the identical-answers groups), so the report of a
resumed or rebuilt batch is the same as that of a batch graded in one go.
"""

import re
import statistics
from dataclasses import dataclass, field

from grader import similarity
from grader.diagnosis import LETTER_L
from grader.spec import ASPECTS, FUNCTIONS

# Names for the mistakes grader.diagnosis recognises, by hint id: what to re-teach.
MISTAKE_TITLES = {
    "missing_shortcut": "the shortcut is never added to the main path",
    "relu_before_add": "a ReLU before the Add instead of after it",
    "missing_final_relu": "no ReLU after the Add",
    "shortcut_stride": "the shortcut's stride differs from the main path's",
    "bn_axis": "BatchNormalization over the wrong axis",
    "padding": "the wrong padding on a convolution",
    "filters_order": "filter counts in the wrong order",
    "missing_block": "a block missing from a stage",
    "hard_coded_f": "the kernel size f hard-coded",
    "hard_coded_s": "the stride s hard-coded",
    "hard_coded_classes": "the number of classes hard-coded",
    "default_f": "a wrong default for f",
    "default_s": "a wrong default for s",
    "default_classes": "a wrong default for classes",
    "hard_coded_names": "layer names that ignore stage and block",
    "unnamed_layers": "layers left without the prescribed names",
    "unnamed_pool": "the final pooling left unnamed (Keras names it average_pooling2d)",
    "block_letters": "block letters shifted or skipped within a stage",
    "stage_in_block": "block='2a' passed where 'a' was meant: the stage twice in the names",
    "letter_l": "the letter 'l' for the digit '1' in the shortcut's names",
    "stride_on_middle_conv": "the stride s on the f x f convolution instead of the first 1x1",
    "keras2_pool_size": "Keras 2 code: a pooling layer without pool_size",
    "keras2_keyword": "Keras 2 code: an argument Keras 3 layers no longer take",
    "keras2_argument": "Keras 2 code: a required first argument left out",
    "keras2_merge": "Keras 1 code: merge() instead of Add",
    "keras2_module": "Keras 2 code: an import path Keras 3 does not have",
    "keras2_output_shape": "Keras 2 code: output_shape, gone in Keras 3",
    "keras2_learning_phase": "Keras 2 code: set_learning_phase, gone in Keras 3",
}

# What a message says about a limit the submission ran into, by kind; the first match wins.
# The messages are grader.kernel's and grader.grade's; a test runs a real timeout through them.
LIMITS = (
    ("timeout", re.compile(r"took longer than its limit|time limit ran out|took too long")),
    ("memory", re.compile(r"MemoryError|out of memory|Cannot allocate memory")),
    ("crash", re.compile(r"crashed the kernel|the kernel failed|kernel died|worker failed")),
    ("no result", re.compile(r"produced no result|measurement was rejected|over the limit")),
)
UNREADABLE = re.compile(r"is not a notebook|is empty: submit|cannot read |not a readable notebook")
HISTOGRAM_BINS = 10  # of 10% each, and a bar of its own for full marks


@dataclass(frozen=True)
class Submission:
    """One results folder as the class report sees it."""

    name: str  # the results folder's name
    payload: dict  # its results.json
    report: str = ""  # link to its report.html, relative to OUT ('' when there is none)
    code: dict = field(default_factory=dict)  # {function: graded source or None}; {} when unknown

    @property
    def max_score(self):
        return sum(t.get("max_score", 0) for t in self.payload.get("tests", []))

    @property
    def error(self):
        """Why grading itself failed ('' when it did not)."""
        out = self.payload.get("output", "")
        return out.split("Grading failed: ", 1)[1].splitlines()[0] if "Grading failed: " in out else ""


def _fraction(score, max_score):
    return score / max_score if max_score else 0.0


def problems(subs):
    """The submissions that could not be graded or hit a limit, each with its kind and reasons."""
    out = []
    for s in subs:
        if s.error:
            kind = "unreadable" if UNREADABLE.search(s.error) else "not graded"
            out.append({"submission": s.name, "kind": kind, "reasons": [s.error], "score": s.payload.get("score", 0),
                        "report": s.report})
            continue
        kinds, reasons = [], []
        lines = s.payload.get("output", "").splitlines()[1:]
        for t in s.payload.get("tests", []):
            function = t.get("extra_data", {}).get("function", "")
            for line in t.get("output", "").splitlines():
                line = re.sub(r"^\[[^\]]*\] ", "", line)  # the case: the reason is the same in each
                lines.append(line if function in line else f"{function}: {line}")
        for line in lines:
            for kind, pattern in LIMITS:
                if pattern.search(line):
                    kinds += [kind] if kind not in kinds else []
                    reasons += [line] if line not in reasons else []
                    break
        if kinds:
            out.append({"submission": s.name, "kind": ", ".join(kinds), "reasons": reasons,
                        "score": s.payload.get("score", 0), "report": s.report})
    return out


def histogram(fractions):
    """Counts per 10% of the maximum ([0, 10%), ..., [90%, 100%)) and at full marks."""
    counts = [0] * (HISTOGRAM_BINS + 1)
    for f in fractions:
        counts[HISTOGRAM_BINS if f >= 1 else min(HISTOGRAM_BINS - 1, max(0, int(f * HISTOGRAM_BINS)))] += 1
    return counts


def pass_rates(subs):
    """Per function and aspect, over the submissions that were graded: how many got full marks, and the mean points."""
    graded = [s for s in subs if not s.error]
    cells = []
    for function in FUNCTIONS:
        for aspect in ASPECTS:
            tests = [t for s in graded for t in s.payload.get("tests", [])
                     if t.get("extra_data", {}).get("function") == function
                     and t.get("extra_data", {}).get("aspect") == aspect]
            passed = sum(t["score"] >= t["max_score"] for t in tests)
            cells.append({"function": function, "aspect": aspect, "graded": len(tests), "passed": passed,
                          "rate": round(passed / len(tests), 4) if tests else None,
                          "mean_points": round(statistics.fmean(t["score"] for t in tests), 2) if tests else None,
                          "max_points": tests[0]["max_score"] if tests else None})
    return cells


def _hints_of(test):
    """(hint id, text) for each recognised mistake in one test: the ids grader.report records, or the texts."""
    texts = [line[len("hint: "):] for line in test.get("output", "").splitlines() if line.startswith("hint: ")]
    ids = test.get("extra_data", {}).get("hints")
    found = list(zip(ids, texts + [""] * len(ids))) if ids is not None else [(t, t) for t in texts]
    if LETTER_L in test.get("output", ""):
        found.append(("letter_l", LETTER_L))
    return found


def mistakes(subs):
    """The named mistakes, most common first, each with the students who made it."""
    by = {}
    for s in subs:
        for t in s.payload.get("tests", []):
            for hint, text in _hints_of(t):
                entry = by.setdefault(hint, {"id": hint, "title": MISTAKE_TITLES.get(hint, hint.replace("_", " ")),
                                             "example": text, "functions": [], "submissions": []})
                function = t.get("extra_data", {}).get("function", "")
                if function and function not in entry["functions"]:
                    entry["functions"].append(function)
                if s.name not in [m["submission"] for m in entry["submissions"]]:
                    entry["submissions"].append({"submission": s.name, "report": s.report})
                entry["example"] = entry["example"] or text
    for entry in by.values():
        entry["students"] = len(entry["submissions"])
    return sorted(by.values(), key=lambda e: (-e["students"], e["id"]))


def identical(subs, template=None):
    """The identical-answers groups (grader.similarity), rarest first, with each member's score and link."""
    versions = {s.name: similarity.version(s.code, template) for s in subs if s.code}
    by = {s.name: s for s in subs}
    groups = []
    for g in similarity.identical_groups(versions):
        groups.append({
            "students": len(g.members),
            "uncommonness": g.uncommonness,
            "most_common": g.common,
            "members": [{"submission": m, "score": by[m].payload.get("score", 0), "report": by[m].report}
                        for m in g.members],
            "differences": [{"function": f, "change": "added" if sign == "+" else "removed", "line": line,
                             "students_with_line": n} for f, sign, line, n in g.differences],
        })
    return {"compared": sum(1 for v in versions.values() if v), "without_code": sum(1 for s in subs if not s.code),
            "distinct_versions": similarity.distinct_versions(versions), "template_excluded": template is not None,
            "groups": groups}


def isolation(subs):
    """How the students' code was isolated (the results' top-level extra_data), with how many submissions each."""
    levels, warnings = {}, []
    for s in subs:
        info = (s.payload.get("extra_data") or {}).get("isolation") or {}
        level = info.get("level", "not recorded")
        levels[level] = levels.get(level, 0) + 1
        if info.get("warning") and info["warning"] not in warnings:
            warnings.append(info["warning"])
    return {"levels": levels, "warnings": warnings}


def figures(subs, template=None):
    """Every figure of the class report, as plain data (written as class.json)."""
    subs = sorted(subs, key=lambda s: s.name)
    fractions = [_fraction(s.payload.get("score", 0), s.max_score) for s in subs]
    scores = [s.payload.get("score", 0) for s in subs]
    max_score = max((s.max_score for s in subs), default=0)
    return {
        "submissions": len(subs),
        "graded": sum(1 for s in subs if not s.error),
        "max_score": max_score,
        "scores": {
            "mean": round(statistics.fmean(scores), 2) if scores else None,
            "median": round(statistics.median(scores), 2) if scores else None,
            "full_marks": sum(f >= 1 for f in fractions),
            "histogram": histogram(fractions),
            "per_submission": [{"submission": s.name, "score": s.payload.get("score", 0), "report": s.report}
                               for s in subs],
        },
        "problems": problems(subs),
        "pass_rates": pass_rates(subs),
        "mistakes": mistakes(subs),
        "identical": identical(subs, template),
        "isolation": isolation(subs),
    }
