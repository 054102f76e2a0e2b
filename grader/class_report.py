"""The class at a glance: the figures of OUT/class.json, from the submissions' results.json payloads. Pure.

Everything is computed from what the batch wrote for each submission (Gradescope's
results.json, and the graded code for the identical-answers groups), so the report of a
resumed or rebuilt batch is the same as that of a batch graded in one go. Only the data
fields of results.json are read (scores, and `extra_data`: error, limits, hint ids, findings),
never the wording of its messages, so rewording a message changes nothing here.
"""

import ast
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
    # Not a hint of grader.diagnosis: the class report tells it from the graded code (class_report.unfinished).
    "unfinished": "left unfinished: it returns None or still holds the assignment's stub (X = None)",
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
    """Per function and aspect, over the submissions that were graded: how many got full marks, and the mean points
    (out of the mean of their maxima: in a class mixing notebook versions an aspect is worth more in some; one a
    version does not grade, names in the newer ones, counts only the submissions it graded)."""
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
                          "max_points": round(statistics.fmean(t["max_score"] for t in tests), 2) if tests else None})
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
    return by.setdefault(key, {"id": key, "functions": [], "submissions": [], "aspects": [], **fields})


def _add(entry, function, s, aspect=""):
    """Count submission `s` under `entry`, for `function` (each submission records its own functions) and `aspect`."""
    if function and function not in entry["functions"]:
        entry["functions"].append(function)
    if aspect and aspect not in entry["aspects"]:
        entry["aspects"].append(aspect)
    mine = next((m for m in entry["submissions"] if m["submission"] == s.name), None)
    if mine is None:
        mine = {"submission": s.name, "report": s.report, "functions": []}
        entry["submissions"].append(mine)
    if function and function not in mine["functions"]:
        mine["functions"].append(function)


def _credit(entry, name, cents):
    """Give `entry` its share (in cents) of a deduction of submission `name`."""
    entry["cents"] = entry.get("cents", 0) + cents
    mine = next(m for m in entry["submissions"] if m["submission"] == name)
    mine["cents"] = mine.get("cents", 0) + cents


def _lost(test):
    return test.get("score", 0) < test.get("max_score", 0)


def _cents(test):
    """The points a test lost, in hundredths: the entries that share a deduction split it without rounding."""
    return max(0, round(100 * (test.get("max_score", 0) - test.get("score", 0))))


def _shares(cents, n):
    """`cents` split into `n` whole shares that add up to it (the first ones take the remainder)."""
    base, extra = divmod(cents, n)
    return [base + (i < extra) for i in range(n)]


def _stub_left(source, function):
    """What shows `function` was left unfinished in its graded code: the stub's placeholder still assigned
    ('X = None', as every version's template has it, so an untouched stub shows too), or no value returned
    ('returns None'); '' when neither, or when the code is unknown."""
    try:
        tree = ast.parse(source or "")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return ""
    defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.name == function]
    if not defs:
        return ""
    nodes = list(ast.walk(defs[-1]))
    for n in nodes:
        if (isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant) and n.value.value is None
                and all(isinstance(t, ast.Name) for t in n.targets)):
            return ast.unparse(n)
    returned = [n.value for n in nodes if isinstance(n, ast.Return) and n.value is not None]
    return "" if any(not (isinstance(v, ast.Constant) and v.value is None) for v in returned) else "returns None"


def _failed_call(tests):
    """The first failed call among one function's lost tests ('' when every call ran)."""
    return next((f.get("found", "") or "failed" for t, data in tests if _lost(t)
                 for f in data.get("findings", []) if f.get("issue") == "error"), "")


def unfinished(s):
    """{function: what shows it}, for each function of `s` left unfinished (grader.class_report._stub_left)
    whose call failed: the stub, not a mistake in the student's own code, is what costs the points."""
    out = {}
    for function in dict.fromkeys(data.get("function", "") for _, data in s.tests()):
        left = _stub_left(s.code.get(function), function) if s.code else ""
        error = _failed_call([(t, d) for t, d in s.tests() if d.get("function") == function]) if left else ""
        if left and error:
            out[function] = (left, error)
    return out


def _unfinished_entry(by, function, left, error):
    what = "no value returned" if left == "returns None" else f"`{left}` left from the stub"
    return _entry(by, f"unfinished:{function}", kind="named",
                  title=f"{function} {MISTAKE_TITLES['unfinished']}",
                  example=f"{function}: {what}; the call failed: {_normalised(error)}")


def _causes(s, data, left, named, found):
    """The entries that explain one lost test of `s`: its function left unfinished, else the named mistakes
    behind it, else what the checks found."""
    function, aspect = data.get("function", ""), data.get("aspect", "")
    if function in left:
        return [_unfinished_entry(named, function, *left[function])]
    hints = _named(data)
    out = []
    for hint, text in hints:
        entry = _entry(named, hint, title=MISTAKE_TITLES.get(hint, hint.replace("_", " ")), example=text,
                       kind="named")
        entry["example"] = entry["example"] or text
        out.append(entry)
    if hints:
        return out
    for f in data.get("findings", []):
        if f.get("issue") == "consequence":
            continue
        layer, what = difference(f)
        where = "" if f.get("issue") in WHOLE_FUNCTION else aspect  # the same in every aspect: one entry
        key = f"found:{function}:{where}:{f.get('issue', '')}:{layer}:{what}"
        entry = _entry(found, key, kind="found", function=function, aspect=where, issue=f.get("issue", ""),
                       layers=[layer] if layer else [], difference=what, order=len(found))
        if all(e is not entry for e in out):
            out.append(entry)
    return out


# Where the checks name the whole model rather than a layer (total_params, output_shape, the output).
WHOLE_MODEL = frozenset({"model", "output"})
# A call that failed, and what it then never built: the failure explains the missing layers.
FAILED_CALL, NEVER_BUILT = frozenset({"error"}), frozenset({"missing", "layers_missing"})


def _places(part):
    """The layers a found part names, the whole model left out."""
    return set(part["layers"]) - WHOLE_MODEL


def _one_mistake(a, b):
    """Whether two parts of the same function and students are one mistake: one difference on several
    layers (the same aspect and issue), one layer seen wrong by several aspects (a layer in common), or a
    failed call and the layers it never built."""
    issues = {a["issue"], b["issue"]}
    return ((a["aspect"], a["issue"]) == (b["aspect"], b["issue"]) or bool(_places(a) & _places(b))
            or bool(issues & FAILED_CALL and issues & NEVER_BUILT))


def _whole_model(cluster):
    return all(not _places(p) and p["issue"] not in WHOLE_FUNCTION for p in cluster)


def _beside(model, rest):
    """The one cluster in `rest` that a whole-model difference belongs to: the only one seen in the same
    aspect (other totals beside other layer counts), else the only one; None when it is not clear."""
    aspects = {p["aspect"] for p in model}
    same = [c for c in rest if aspects & {p["aspect"] for p in c}]
    return same[0] if len(same) == 1 else rest[0] if len(rest) == 1 and not same else None


def _clusters(parts):
    """The found parts of one function and the same students, as lists that are one mistake each. A
    difference of the whole model (other totals, another output) goes with the mistake beside it."""
    clusters = []
    for part in parts:
        joined = [c for c in clusters if any(_one_mistake(part, p) for p in c)]
        clusters = [c for c in clusters if c not in joined] + [[p for c in joined for p in c] + [part]]
    rest = [c for c in clusters if not _whole_model(c)]
    alone = []
    for model in (c for c in clusters if _whole_model(c)):
        home = _beside(model, rest)
        if home is None:
            alone += model
        else:
            home += model
    clusters = rest + ([alone] if alone else [])  # differences of the whole model alone: one mistake
    return [sorted(c, key=lambda p: p["order"]) for c in clusters]


def _shown(parts):
    """'layers: difference' for each difference of one mistake, in the order found (4 layers at most)."""
    by = {}
    for p in parts:
        layers = by.setdefault(p["difference"], [])
        layers += [layer for layer in p["layers"] if layer not in layers]
    return [f"{', '.join(ls[:4])}{' ...' if len(ls) > 4 else ''}: {d}" if ls else d for d, ls in by.items()]


def _merged(parts):
    """One entry for the parts of one mistake: their students, aspects and points, the failed call first."""
    # The failed call first, differences of the whole model last: stable, so in the order found otherwise.
    parts = sorted(parts, key=lambda p: (p["issue"] not in WHOLE_FUNCTION, not _places(p)))
    lead = parts[0]
    entry = {k: v for k, v in lead.items() if k not in ("order", "aspect")}
    entry["parts"] = [p["id"] for p in parts]
    entry["layers"] = list(dict.fromkeys(layer for p in parts for layer in p["layers"]))
    entry["aspects"] = _aspect_order(a for p in parts for a in p["aspects"])
    entry["submissions"] = [dict(m) for m in lead["submissions"]]
    shown = _shown(parts)
    more = f" (and {len(shown) - 3} more, the same students)" if len(shown) > 3 else ""
    aspects = "" if lead["issue"] in WHOLE_FUNCTION else f" {', '.join(entry['aspects'])}"  # the whole function
    entry["title"] = f"{entry['function']}{aspects}: " + "; ".join(shown[:3]) + more
    entry["example"] = "; ".join(shown[:12])
    return entry


def _aspect_order(aspects):
    """The aspects in the order the grader grades them (any it does not know last)."""
    aspects = list(dict.fromkeys(aspects))
    return sorted(aspects, key=lambda a: ASPECTS.index(a) if a in ASPECTS else len(ASPECTS))


def _points(entry):
    """The entry with its points (from cents), in all and per submission."""
    for m in entry["submissions"]:
        m["points"] = m.pop("cents", 0) / 100
    entry["points"] = entry.pop("cents", 0) / 100
    entry["aspects"] = _aspect_order(entry["aspects"])
    entry["students"] = len(entry["submissions"])
    return entry


def _split(lost, entry_of):
    """Each deduction's points split among the entries that explain it (merged entries, not their parts, so
    that one mistake found in several ways takes them whole)."""
    for name, cents, ids in lost:
        entries = list({id(entry_of[i]): entry_of[i] for i in ids}.values())
        for entry, share in zip(entries, _shares(cents, len(entries) or 1)):
            _credit(entry, name, share)


def mistakes(subs):
    """Every deduction under at least one mistake, one entry per mistake, each by count: the named ones
    first (a function left unfinished, grader.diagnosis's hints), then what the checks found where no hint
    fires. Each lost test's points are split among the entries that explain it, so that they add up to
    the points the class lost.

    What the checks found is one entry per mistake: the differences found in exactly the same students
    for the same function, on the same layers in any aspect (or one difference on several layers, or a
    failed call and the layers it never built), with the points they cost in all.
    """
    named, found, lost = {}, {}, []  # lost: (submission, cents, ids of the entries that explain it)
    for s in subs:
        kind = s.data.get("error_kind") or "not graded"
        left = {} if s.error else unfinished(s)
        for t, data in s.tests():
            if not _lost(t):
                continue
            entries = ([_entry(named, f"error:{kind}", title=f"could not be graded: {kind}", example=s.error,
                               kind="error")] if s.error else _causes(s, data, left, named, found))
            for entry in entries:
                _add(entry, data.get("function", ""), s, data.get("aspect", ""))
            lost.append((s.name, _cents(t), [e["id"] for e in entries]))
    groups = {}
    for part in found.values():
        groups.setdefault((part["function"], frozenset(m["submission"] for m in part["submissions"])), []).append(part)
    merged = [_merged(c) for parts in groups.values() for c in _clusters(parts)]
    _split(lost, {**named, **{i: e for e in merged for i in e.pop("parts")}})
    out = [_points(entry) for entry in list(named.values()) + merged]
    order = {"named": 0, "error": 1, "found": 2}
    return sorted(out, key=lambda e: (order[e["kind"]], -e["students"], e["id"]))


def points(subs, found_mistakes):
    """The points the graded tests lost, and those the mistakes' entries take (the same, when every
    deduction is explained)."""
    lost = sum(_cents(t) for s in subs for t, _ in s.tests() if _lost(t))
    return {"lost": lost / 100, "explained": sum(round(100 * e["points"]) for e in found_mistakes) / 100}


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
        "points": points(subs, found_mistakes),
        "identical": identical(subs, template),
        "isolation": isolation(subs),
    }
