"""The class at a glance: the figures of OUT/class.json, from the submissions' results.json payloads. Pure.

Everything is computed from what the batch wrote for each submission (Gradescope's
results.json, and the graded code for the identical-answers groups), so the report of a
resumed or rebuilt batch is the same as that of a batch graded in one go. Only the data
fields of results.json are read (scores, and `extra_data`: error, limits, hint ids, findings),
never the wording of its messages, so rewording a message changes nothing here.
"""

import re
import statistics
from dataclasses import dataclass, field

from grader import similarity
from grader.diagnosis import LETTER_L, letter_l_note
from grader.spec import ASPECTS, FUNCTIONS

# Names for the mistakes grader.diagnosis recognises, by hint id: what to re-teach.
MISTAKE_TITLES = {
    "missing_shortcut": "the shortcut is never added to the main path",
    "relu_before_add": "a ReLU before the Add instead of after it",
    "missing_final_relu": "no ReLU after the Add",
    "bn_mode": "a BatchNormalization that ignores the mode it should run in (the block's training argument)",
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

HISTOGRAM_BINS = 10  # of 10% each, and a bar of its own for full marks
# The snake_case names Keras gives a layer left unnamed (average_pooling2d_3): a name of no one's.
KERAS_NAMES = frozenset({"conv2d", "batch_normalization", "dense", "average_pooling2d", "max_pooling2d", "re_lu",
                         "activation", "add", "zero_padding2d", "flatten", "input_layer"})
# What the checks found, by Finding.issue, as the class report words it ({} are filled from the record).
ISSUE_TEXTS = {
    "missing": "no such layer",
    "kind": "a {found} in its place",
    "unexpected": "an extra {found} layer",
    "layers_missing": "{expected} missing",
    "total_params": "other parameter totals",
    "not_measured": "not measured",
    "not_defined": "not defined in the notebook",
    "limit": "hit the {found} limit",
    "grading_failed": "could not be graded",
}

# Issues that keep a whole function from being judged: every aspect shows the same one.
WHOLE_FUNCTION = frozenset({"error", "not_measured", "not_defined", "limit", "grading_failed"})


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
    def data(self):
        """The top-level extra_data: error, error_kind, limits, isolation (grader.report)."""
        return self.payload.get("extra_data") or {}

    @property
    def error(self):
        """Why grading itself failed ('' when it did not)."""
        return self.data.get("error", "") or ""

    def tests(self):
        return [(t, t.get("extra_data") or {}) for t in self.payload.get("tests", [])]


def _fraction(score, max_score):
    return score / max_score if max_score else 0.0


def problems(subs):
    """The submissions that could not be graded or hit a limit, each with its kind and reasons."""
    out = []
    for s in subs:
        if s.error:
            out.append({"submission": s.name, "kind": s.data.get("error_kind") or "not graded", "reasons": [s.error],
                        "score": s.payload.get("score", 0), "report": s.report})
            continue
        kinds, reasons = [], []
        for limit in s.data.get("limits", []):
            reason, function = limit.get("reason", ""), limit.get("function", "")
            reason = reason if not function or function in reason else f"{function}: {reason}"
            kinds += [limit["kind"]] if limit.get("kind") not in kinds else []
            reasons += [reason] if reason not in reasons else []
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


def _named(data):
    """(hint id, text) for each recognised mistake behind one test: the ids grader.report records, and the
    letter 'l' for '1', which the names check finds on a layer."""
    ids, texts = data.get("hints") or [], data.get("hint_texts") or []
    found = list(zip(ids, texts + [""] * (len(ids) - len(texts))))
    if any(f.get("issue") == "name" and letter_l_note(f.get("expected", ""), f.get("found", ""))
           for f in data.get("findings", [])):
        found.append(("letter_l", LETTER_L))
    return found


def _unnamed(name):
    """The Keras name a layer left unnamed gets, without its number ('average_pooling2d'); None for a name of the student's."""
    base = re.sub(r"_\d+$", "", name or "")
    return base if base in KERAS_NAMES else None


def _normalised(text):
    """A message with its numbers (shapes, counts, sizes) taken out, so one mistake reads the same for everyone."""
    return re.sub(r"\b\d+\b", "N", " ".join(str(text).split()))[:160]


def difference(finding):
    """(layer, what differs) of one finding, normalised so that the same mistake by two students reads the same."""
    issue, layer = finding.get("issue", ""), finding.get("layer", "")
    expected, found, detail = finding.get("expected", ""), finding.get("found", ""), finding.get("detail", "")
    if issue == "name":
        base = _unnamed(found)
        return layer, f"left unnamed (Keras named it {base})" if base else f"named '{found}'"
    if issue == "unexpected":
        return _unnamed(layer) or layer, ISSUE_TEXTS[issue].format(found=found)
    if issue in ("shape", "params", "output_shape"):
        what = {"shape": "output shape", "params": "", "output_shape": "output shape"}[issue]
        return layer, detail or f"{what} {found} for {expected}".strip()
    if issue == "outputs":
        return layer, detail
    if issue == "error":
        return layer, f"the call failed: {_normalised(found)}"
    return layer, ISSUE_TEXTS.get(issue, issue).format(expected=expected, found=found)


def _entry(by, key, **fields):
    return by.setdefault(key, {"id": key, "functions": [], "submissions": [], **fields})


def _add(entry, function, s):
    """Count submission `s` under `entry`, for `function` (each submission records its own functions)."""
    if function and function not in entry["functions"]:
        entry["functions"].append(function)
    mine = next((m for m in entry["submissions"] if m["submission"] == s.name), None)
    if mine is None:
        mine = {"submission": s.name, "report": s.report, "functions": []}
        entry["submissions"].append(mine)
    if function and function not in mine["functions"]:
        mine["functions"].append(function)


def _lost(test):
    return test.get("score", 0) < test.get("max_score", 0)


def mistakes(subs):
    """Every deduction under at least one mistake: the named ones (grader.diagnosis's hints) first, then what
    the checks found where no hint fires, grouped by function, aspect, layer and difference; each by count.

    Differences found in exactly the same students (one mistake seen on several layers) are one entry.
    """
    named, found = {}, {}
    for s in subs:
        if s.error:
            kind = s.data.get("error_kind") or "not graded"
            entry = _entry(named, f"error:{kind}", title=f"could not be graded: {kind}", example=s.error, kind="error")
            for t, data in s.tests():
                if _lost(t):
                    _add(entry, data.get("function", ""), s)
            continue
        for t, data in s.tests():
            if not _lost(t):
                continue
            function, aspect = data.get("function", ""), data.get("aspect", "")
            hints = _named(data)
            for hint, text in hints:
                entry = _entry(named, hint, title=MISTAKE_TITLES.get(hint, hint.replace("_", " ")), example=text,
                               kind="named")
                entry["example"] = entry["example"] or text
                _add(entry, function, s)
            if hints:
                continue
            for f in data.get("findings", []):
                if f.get("issue") == "consequence":
                    continue
                layer, what = difference(f)
                where = "" if f.get("issue") in WHOLE_FUNCTION else aspect  # the same in every aspect: one entry
                key = f"found:{function}:{where}:{f.get('issue', '')}:{layer}:{what}"
                entry = _entry(found, key, kind="found", function=function, aspect=where, issue=f.get("issue", ""),
                               layers=[layer] if layer else [], difference=what)
                _add(entry, function, s)
    merged = {}
    for entry in found.values():  # one mistake seen on several layers: the same students, one entry
        group = (entry["function"], entry["aspect"], entry["issue"], tuple(m["submission"] for m in entry["submissions"]))
        if group in merged:
            merged[group]["parts"].append(entry)
        else:
            merged[group] = {**entry, "parts": [entry]}
    out = list(named.values())
    for entry in merged.values():
        parts = entry.pop("parts")
        entry["layers"] = [layer for p in parts for layer in p["layers"]]
        shown = [f"{p['layers'][0]}: {p['difference']}" if p["layers"] else p["difference"] for p in parts]
        if len({p["difference"] for p in parts}) == 1 and len(parts) > 1:
            shown = [f"{', '.join(entry['layers'][:4])}{' ...' if len(parts) > 4 else ''}: {parts[0]['difference']}"]
        more = f" (and {len(shown) - 3} more, the same students)" if len(shown) > 3 else ""
        entry["title"] = f"{' '.join(filter(None, (entry['function'], entry['aspect'])))}: " + "; ".join(shown[:3]) + more
        entry["example"] = "; ".join(shown[:12])
        entry["id"] = parts[0]["id"]
        out.append(entry)
    for entry in out:
        entry["students"] = len(entry["submissions"])
    order = {"named": 0, "error": 1, "found": 2}
    return sorted(out, key=lambda e: (order[e["kind"]], -e["students"], e["id"]))


def deductions(subs, found_mistakes):
    """How many (student, function) pairs lose points, and how many of them some mistake explains."""
    explained = {(m["submission"], f) for e in found_mistakes for m in e["submissions"] for f in m["functions"]}
    lost = sorted({(s.name, data.get("function", "")) for s in subs for t, data in s.tests() if _lost(t)})
    left = [{"submission": n, "function": f} for n, f in lost if (n, f) not in explained]
    return {"total": len(lost), "explained": len(lost) - len(left), "unexplained": left}


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
        info = s.data.get("isolation") or {}
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
    found_mistakes = mistakes(subs)
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
        "mistakes": found_mistakes,
        "deductions": deductions(subs, found_mistakes),
        "identical": identical(subs, template),
        "isolation": isolation(subs),
    }
