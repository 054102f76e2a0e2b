"""The class page: the figures of grader.class_report in, one self-contained HTML document out. Pure.

Like the student's report: inline CSS and an inline SVG histogram, no scripts, fonts or
images to fetch, so it opens offline; the only links are relative ones to each submission's
report.html. Every piece of text is escaped: names and code come from students.
"""

from html import escape
from urllib.parse import quote

from grader.html_report import CSS as REPORT_CSS
from grader.spec import ASPECTS, FUNCTIONS

CSS = REPORT_CSS + """
.lead { font-size: 17px; margin: 6px 0 4px; }
.problems td:first-child, .mistakes td:first-child, .regrade td:first-child { white-space: nowrap; }
.mistakes tr.found b { font-weight: 600; }
.kind { font-weight: 700; color: #a3261b; }
td.rate { text-align: right; font-variant-numeric: tabular-nums; min-width: 96px; }
td.rate small { color: #5b6573; display: block; }
.links a { margin-right: 8px; white-space: nowrap; }
.group { border: 1px solid #d5dbe3; background: #fff; padding: 8px 12px; margin: 10px 0; border-radius: 4px; }
.group.common { background: #f4f6f8; }
.group h3 { margin: 2px 0 6px; }
pre.diff { background: #f7f8fa; border: 1px solid #e3e7ec; padding: 6px 8px; overflow-x: auto; margin: 6px 0;
           font: 12px/1.4 "DejaVu Sans Mono", Menlo, Consolas, monospace; }
pre.diff .add { color: #1e6b3f; } pre.diff .del { color: #a3261b; } pre.diff .fn { color: #5b6573; }
pre.diff .n { color: #8a93a0; }
svg text { font: 12px system-ui, "DejaVu Sans", sans-serif; fill: #1d232b; }
"""


def _link(name, report):
    return f'<a href="{escape(quote(report))}">{escape(name)}</a>' if report else escape(name)


def _rate_class(rate):
    if rate is None:
        return ""
    return "full" if rate >= 0.9 else "part" if rate >= 0.5 else "zero"


def histogram_svg(counts, mean, median, max_score, width=720, height=280):
    """Bars per 10% of the maximum and one for full marks, with the mean and median marked."""
    left, right, top, bottom = 44, 16, 52, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    n = len(counts)
    bar_w = plot_w / n
    peak = max(counts + [1])
    parts = [f'<svg width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="histogram of scores">',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#8a93a0"/>']
    step = max(1, -(-peak // 5))
    for tick in range(0, peak + 1, step):
        y = top + plot_h - plot_h * tick / peak
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#eef1f5"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{tick}</text>')
    for i, count in enumerate(counts):
        x = left + i * bar_w
        h = plot_h * count / peak
        lo = i * 10
        label = "100%" if i == n - 1 else f"{lo}–{lo + 9}%"
        colour = "#2e8b57" if i == n - 1 else "#3166b0"
        parts.append(f'<rect x="{x + 3:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w - 6:.1f}" height="{h:.1f}" '
                     f'fill="{colour}"><title>{label}: {count}</title></rect>')
        if count:
            parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h - h - 4:.1f}" text-anchor="middle">{count}</text>')
        parts.append(f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 16}" text-anchor="middle">{label}</text>')

    def at(score):
        f = score / max_score if max_score else 0
        return left + (n - 0.5) * bar_w if f >= 1 else left + f * (n - 1) * bar_w

    for name, value, colour, dy in (("mean", mean, "#a3261b", 0), ("median", median, "#7a4fb0", 14)):
        if value is None:
            continue
        x = at(value)
        parts.append(f'<line x1="{x:.1f}" y1="{top - 46 + dy}" x2="{x:.1f}" y2="{top + plot_h}" stroke="{colour}" '
                     f'stroke-width="2" stroke-dasharray="5 3"/>'
                     + (f'<text x="{x - 4:.1f}" y="{top - 34 + dy}" style="fill: {colour}" text-anchor="end">'
                        if x > width - 120 else f'<text x="{x + 4:.1f}" y="{top - 34 + dy}" style="fill: {colour}">')
                     + f'{name} {value:g}</text>')
    parts.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 6}" text-anchor="middle">'
                 f'score, % of {max_score:g} points</text></svg>')
    return "".join(parts)


def _problems(figures):
    rows = figures["problems"]
    if not rows:
        return "<p>None: every submission was graded within its limits.</p>"
    body = "".join(
        f'<tr><td>{_link(p["submission"], p["report"])}</td><td class="kind">{escape(p["kind"])}</td>'
        f'<td>{"<br>".join(escape(r) for r in p["reasons"])}</td><td class="num">{p["score"]:g}</td></tr>'
        for p in rows)
    return ('<table class="problems"><tr><th>submission</th><th>what happened</th><th>reason</th><th>score</th></tr>'
            f"{body}</table>")


def _pass_rates(figures):
    by = {(c["function"], c["aspect"]): c for c in figures["pass_rates"]}
    aspects = [a for a in ASPECTS if any(by[(f, a)]["graded"] for f in FUNCTIONS)] or list(ASPECTS)  # those graded
    head = "".join(f"<th>{escape(a)}</th>" for a in aspects)
    rows = []
    for f in FUNCTIONS:
        cells = []
        for a in aspects:
            c = by[(f, a)]
            if c["rate"] is None:
                cells.append('<td class="rate">-</td>')
                continue
            cells.append(f'<td class="rate {_rate_class(c["rate"])}">{100 * c["rate"]:.0f}% '
                         f'<small>{c["passed"]} of {c["graded"]} &middot; mean {c["mean_points"]:g} / '
                         f'{c["max_points"]:g}</small></td>')
        rows.append(f"<tr><th>{escape(f)}</th>{''.join(cells)}</tr>")
    return f'<table class="rates"><tr><th>function</th>{head}</tr>{"".join(rows)}</table>'


def _mistakes(figures):
    rows = figures["mistakes"]
    d = figures.get("deductions") or {}
    lead = ""
    if d:
        pts = figures.get("points") or {}
        worth = f', {pts["explained"]:g} of {pts["lost"]:g} points' if pts else ""
        lead = (f'<p>{d["explained"]} of {d["total"]} deductions explained{worth} (a student losing points on a '
                "function counts once per function). Named mistakes come first; then, where no named mistake fits, "
                "what the checks found: one entry per mistake, the same students' differences on the same layers in "
                "any aspect, a failed call with the layers it never built. A deduction two mistakes explain is "
                "split between them.</p>")
        if d["unexplained"]:
            lead += ('<p class="error">Not explained: ' + escape(", ".join(f'{u["submission"]} ({u["function"]})'
                                                                          for u in d["unexplained"])) + "</p>")
    if not rows:
        return lead + "<p>No mistake was found.</p>"
    graded = figures["graded"] or 1
    body = []
    for m in rows:
        what = {"named": "named", "error": "not graded"}.get(m["kind"], "found")
        aspects = ", ".join(m.get("aspects") or [m.get("aspect", "")])
        detail = "" if m["kind"] == "found" else f' &middot; e.g. {escape(m["example"])}'
        body.append(
            f'<tr class="{escape(m["kind"])}"><td class="num">{m["students"]}</td><td><b>{escape(m["title"])}</b>'
            f'<br><span class="muted">{escape(", ".join(m["functions"]))} &middot; {escape(aspects)} &middot; '
            f'{escape(what)}{detail}</span></td>'
            f'<td class="num">{100 * m["students"] / graded:.0f}%</td><td class="num">{_points(m.get("points"))}</td>'
            f'<td class="links">{" ".join(_link(s["submission"], s["report"]) for s in m["submissions"])}</td></tr>')
    return (lead + '<table class="mistakes"><tr><th>students</th><th>mistake</th><th>of graded</th>'
            f'<th>points lost, in all</th><th>their reports</th></tr>{"".join(body)}</table>')


def _checks_changed(checks):
    return "<br>".join(f'{escape(c["check"])}: {_points(c["before"])} &rarr; {_points(c["after"])}' for c in checks)


def _points(value):
    return "-" if value is None else f"{value:g}"


def _regrade(figures):
    r = figures.get("regrade")
    if not r or not r["compared"]:
        return "<p>First grading of this folder: there is no earlier grading to compare with.</p>"
    parts = []
    if not r["changed"]:
        parts.append(f'<p class="same">Graded again: no score changed ({r["unchanged"]} submissions kept every '
                     "score).</p>")
    else:
        rows = "".join(f'<tr><td>{_link(c["submission"], c["report"])}</td><td class="num">{_points(c["before"])}</td>'
                       f'<td class="num">{_points(c["after"])}</td><td>{_checks_changed(c["checks"])}</td></tr>'
                       for c in r["changed"])
        parts.append(f'<p>{len(r["changed"])} score(s) changed with the grader, the notebooks being the same; '
                     f'{r["unchanged"]} kept every score.</p>'
                     '<table class="regrade"><tr><th>submission</th><th>before</th><th>after</th>'
                     f"<th>checks changed</th></tr>{rows}</table>")
    if r["file_changed"]:
        rows = "".join(f'<tr><td>{_link(c["submission"], c["report"])}</td><td class="num">{_points(c["before"])}</td>'
                       f'<td class="num">{_points(c["after"])}</td><td>{_checks_changed(c["checks"])}</td></tr>'
                       for c in r["file_changed"])
        parts.append(f'<h3>Their own notebook changed ({len(r["file_changed"])}): not the regrade\'s doing</h3>'
                     '<table class="regrade file"><tr><th>submission</th><th>before</th><th>after</th>'
                     f"<th>checks changed</th></tr>{rows}</table>")
    if r["new"]:
        parts.append("<p>New since then: " + " ".join(_link(n["submission"], n["report"]) for n in r["new"]) + "</p>")
    if r["gone"]:
        parts.append("<p>Gone since then: " + escape(", ".join(g["submission"] for g in r["gone"])) + "</p>")
    return "\n".join(parts)


def _diff(group, compared):
    lines, function = [], None
    for d in group["differences"]:
        if d["function"] != function:
            function = d["function"]
            lines.append(f'<span class="fn">{escape(function)}:</span>')
        sign, cls = ("+", "add") if d["change"] == "added" else ("-", "del")
        have = d["students_with_line"]
        note = f"only this group has it" if d["change"] == "added" and have == group["students"] else (
            f"{have} of {compared} have it")
        lines.append(f'<span class="{cls}">{sign} {escape(d["line"])}</span>  <span class="n"># {note}</span>')
    return f'<pre class="diff">{chr(10).join(lines)}</pre>' if lines else ""


def _identical(figures):
    ident = figures["identical"]
    intro = (f"<p>{ident['compared']} submissions compared, {ident['distinct_versions']} distinct versions of the "
             "graded code once comments, docstrings, blank lines, quote style and the keyword or positional "
             "spelling of arguments are set aside. Identical code is often innocent (the same tutorial, the same "
             "study group, the obvious answer); these groups are only worth a look, rarest shared code first. "
             "The lines shown are where a group's code differs from the most common version; a group's "
             "uncommonness adds up, over those lines, log2(submissions compared / submissions with the line) "
             "(for a missing line, / submissions without it), so lines few students wrote weigh most.</p>")
    notes = []
    if ident["without_code"]:
        notes.append(f"{ident['without_code']} submission(s) had no readable code.")
    if ident["template_excluded"]:
        notes.append("Functions left as the assignment's template had them are not compared.")
    if notes:
        intro += f'<p class="muted">{" ".join(notes)}</p>'
    groups = ident["groups"]
    if not groups:
        return intro + "<p>No two submissions share the same graded code.</p>"
    parts = [intro]
    for i, g in enumerate(groups, 1):
        members = " ".join(f'{_link(m["submission"], m["report"])} <span class="muted">({m["score"]:g})</span>'
                           for m in g["members"])
        if g["most_common"]:
            head = (f"The most common version: {g['students']} students "
                    '<span class="muted">(sharing it means little)</span>')
        else:
            head = (f"Group {i}: {g['students']} students with the same code "
                    f'<span class="muted">&middot; uncommonness {g["uncommonness"]:g}</span>')
        cls = "group common" if g["most_common"] else "group"
        parts.append(f'<div class="{cls}"><h3>{head}</h3><div class="links">{members}</div>'
                     f'{_diff(g, ident["compared"])}</div>')
    return "\n".join(parts)


def _isolation(info):
    levels = ", ".join(f"{escape(level)} ({n})" for level, n in sorted(info["levels"].items()))
    line = f'<p class="muted">Student code isolated by: {levels}.</p>' if levels else ""
    return line + "".join(f'<p class="error">{escape(w)}</p>' for w in info["warnings"])


def render(figures, title="class"):
    """The whole class page, as a string."""
    s = figures["scores"]
    n, graded, bad = figures["submissions"], figures["graded"], len(figures["problems"])
    stats = (f"mean <b>{s['mean']:g}</b>, median <b>{s['median']:g}</b> of {figures['max_score']:g}; "
             f"{s['full_marks']} with full marks" if n else "no submissions")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Class report: {escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Class report: {escape(title)}</h1>",
        f'<p class="lead">{n} submissions, {graded} graded; {bad} could not be graded or hit a limit. '
        f"Scores: {stats}.</p>",
        _isolation(figures["isolation"]),
        f'<h2 id="problems">Could not be graded or hit a limit ({bad})</h2>',
        _problems(figures),
        '<h2 id="regrade">What the last regrade changed</h2>',
        _regrade(figures),
        '<h2 id="scores">Distribution of scores</h2>',
        histogram_svg(s["histogram"], s["mean"], s["median"], figures["max_score"]) if n else "",
        f'<p class="muted">All {n} submissions, those that could not be graded included (they score 0).</p>',
        '<h2 id="pass-rates">Pass rates per function and aspect</h2>',
        _pass_rates(figures),
        f'<p class="muted">Share of the {graded} graded submissions with full marks on each check, '
        "and their mean points.</p>",
        '<h2 id="mistakes">Most common mistakes: what to re-teach</h2>',
        _mistakes(figures),
        '<h2 id="identical">Identical answers, worth a look</h2>',
        _identical(figures),
        "</body></html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"
