"""What a regrade changed: the class's scores before and after, compared per submission and check. Pure.

An instructor fixes the expected outputs or a grading rule and grades the same folder
again into the same OUT. Each time the class report is written, grader.class_files keeps a
snapshot of every submission's scores per check and the sha256 of its notebook; the next
time the scores differ, that snapshot is "before". A submission whose own notebook changed
is listed apart: its new score says nothing about the change to the grader.
"""


def snapshot(subs, notebook_sha256=None, keys=None):
    """{submission: {"score", "checks": {test name: score}, "notebook_sha256", "key"}} of class_report.Submissions.

    `notebook_sha256` maps a submission to its notebook's hash (None where the notebook is gone),
    `keys` to the batch manifest's key of its result (which changes whenever it is graded again
    by another grader or from another notebook).
    """
    hashes, keys = notebook_sha256 or {}, keys or {}
    return {s.name: {"score": s.payload.get("score", 0),
                     "checks": {t.get("name", ""): t.get("score", 0) for t in s.payload.get("tests", [])},
                     "notebook_sha256": hashes.get(s.name), "key": keys.get(s.name)}
            for s in subs}


def carry_known(now, kept):
    """`now` with the notebook hashes and keys it lacks (the notebook or the manifest is gone) taken from
    `kept`, where the results are the same."""
    out = {}
    for name, entry in now.items():
        old = (kept or {}).get(name) or {}
        if old.get("checks") == entry["checks"]:
            entry = dict(entry, **{k: old.get(k) for k in ("notebook_sha256", "key") if entry.get(k) is None})
        out[name] = entry
    return out


def same_grading(a, b):
    """Whether two snapshots are one grading: the same submissions, scores per check and result keys.

    The class report rebuilt from the same results is the same grading; a regrade is not, even
    when no score changed (its results have new keys).
    """
    def of(snap):
        return {k: (v["score"], v["checks"], v.get("key")) for k, v in (snap or {}).items()}
    return of(a) == of(b)


def _check_changes(before, after):
    names = list(before["checks"]) + [n for n in after["checks"] if n not in before["checks"]]
    return [{"check": n, "before": before["checks"].get(n), "after": after["checks"].get(n)}
            for n in names if before["checks"].get(n) != after["checks"].get(n)]


def compare(before, after, reports=None):
    """What changed from snapshot `before` to `after`; `before` None for a folder graded the first time.

    `changed`: the same notebook, another score or check score (what the regrade changed);
    `file_changed`: the notebook itself is another (listed apart); `new` and `gone`: submissions
    only in one of them; `unchanged`: how many kept every score.
    """
    reports = reports or {}
    if before is None:
        return {"compared": False, "changed": [], "file_changed": [], "new": [], "gone": [], "unchanged": 0}
    changed, file_changed, unchanged = [], [], 0
    for name in sorted(set(before) & set(after)):
        b, a = before[name], after[name]
        row = {"submission": name, "report": reports.get(name, ""), "before": b["score"], "after": a["score"],
               "checks": _check_changes(b, a)}
        hb, ha = b.get("notebook_sha256"), a.get("notebook_sha256")
        if hb is not None and ha is not None and hb != ha:
            file_changed.append(row)
        elif row["checks"] or b["score"] != a["score"]:
            changed.append(row)
        else:
            unchanged += 1
    new = [{"submission": n, "report": reports.get(n, ""), "after": after[n]["score"]} for n in sorted(set(after) - set(before))]
    gone = [{"submission": n, "before": before[n]["score"]} for n in sorted(set(before) - set(after))]
    return {"compared": True, "changed": changed, "file_changed": file_changed, "new": new, "gone": gone,
            "unchanged": unchanged}


def _checks_text(checks):
    return "; ".join(f"{c['check']}: {_num(c['before'])} -> {_num(c['after'])}" for c in checks)


def _num(value):
    return "-" if value is None else f"{value:g}"


def csv_rows(comparison):
    """The rows of OUT/regrade.csv: submission, what, score before, after, the checks that changed."""
    rows = [["submission", "what", "before", "after", "checks changed"]]
    for what, key in (("score changed", "changed"), ("own file changed", "file_changed")):
        rows += [[r["submission"], what, _num(r["before"]), _num(r["after"]), _checks_text(r["checks"])]
                 for r in comparison[key]]
    rows += [[r["submission"], "new", "-", _num(r["after"]), ""] for r in comparison["new"]]
    rows += [[r["submission"], "gone", _num(r["before"]), "-", ""] for r in comparison["gone"]]
    return rows
