"""The HTML feedback page: a GradeResult in, one self-contained HTML document out. Pure.

Self-contained so that it opens offline, from a results folder or an e-mail: inline CSS,
no scripts, no fonts, images or links to fetch. Every piece of text is escaped, since
layer names and error messages come from the student's code.
"""

from html import escape

from grader.results import LAYER_COLUMNS
from grader.spec import ASPECTS, FUNCTIONS

CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; color: #1d232b;
       margin: 0 auto; padding: 24px 24px 64px; max-width: 1240px; background: #fbfbfc; }
h1 { font-size: 24px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 8px; border-bottom: 2px solid #d5dbe3; }
h3 { font-size: 16px; margin: 18px 0 6px; }
.muted { color: #5b6573; } .score { font-size: 40px; font-weight: 700; margin: 8px 0; }
.bar { height: 12px; background: #e3e7ec; border-radius: 6px; overflow: hidden; max-width: 520px; }
.bar > div { height: 100%; background: #2e8b57; }
table { border-collapse: collapse; margin: 8px 0 12px; background: #fff; }
th, td { border: 1px solid #d5dbe3; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.pass { color: #1e6b3f; font-weight: 600; } .fail { color: #a3261b; font-weight: 600; }
td.full { background: #e7f5ec; } td.part { background: #fff4d6; } td.zero { background: #fde4e1; }
.error { border-left: 5px solid #a3261b; background: #fde4e1; padding: 8px 12px; }
.hints { border-left: 5px solid #3166b0; background: #e8f0fb; padding: 6px 12px; margin: 8px 0; }
.hints p { margin: 4px 0; }
ul.msgs { margin: 4px 0 10px; padding-left: 22px; } ul.msgs li { margin: 2px 0; }
code, .layers td { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 11px; }
.layers { width: 100%; } .layers th { font-size: 12px; } .layers td { padding: 2px 4px; }
.layers td:nth-child(5), .layers td:nth-child(10) { max-width: 150px; font-size: 10px; }
div.scroll { overflow-x: auto; }
.layers td:nth-child(3), .layers td:nth-child(8) { white-space: nowrap; }
.layers td.diff { background: #ffc9c0; color: #7d1a10; font-weight: 700; }
.layers td.gap { background: #fbe9e7; color: #8a4a40; font-style: italic; }
.layers th.side { text-align: center; } .layers td.sep, .layers th.sep { border-left: 3px solid #8a93a0; }
details { margin: 6px 0 14px; } summary { cursor: pointer; font-weight: 600; }
"""


def _cls(check):
    if check.score >= check.max_score:
        return "full"
    return "part" if check.score > 0 else "zero"


def _summary(result):
    by = {(c.function, c.aspect): c for c in result.checks}
    aspects = [a for a in ASPECTS if any(c.aspect == a for c in result.checks)] or list(ASPECTS)  # as graded
    head = "".join(f"<th>{escape(a)}</th>" for a in aspects)
    rows = []
    for f in FUNCTIONS:
        cells, got, mx = [], 0.0, 0.0
        for a in aspects:
            c = by.get((f, a))
            if c is None:
                cells.append("<td>-</td>")
                continue
            got, mx = got + c.score, mx + c.max_score
            cells.append(f'<td class="num {_cls(c)}">{c.score:g} / {c.max_score:g}</td>')
        rows.append(f"<tr><th>{escape(f)}</th>{''.join(cells)}<td class=\"num\"><b>{got:g} / {mx:g}</b></td></tr>")
    return (f'<table class="summary"><tr><th>function</th>{head}<th>total</th></tr>'
            + "".join(rows) + "</table>")


def _check(check):
    status = '<span class="pass">pass</span>' if check.passed else '<span class="fail">fail</span>'
    cases = f", {check.passed_cases} of {len(check.outcomes)} calls pass" if check.outcomes else ""
    lines = [f"<h3>{escape(check.aspect)}: {check.score:g} / {check.max_score:g} &middot; {status}"
             f'<span class="muted">{cases}</span></h3>']
    msgs = [m for m in check.messages if not m.startswith("hint: ")]
    if msgs:
        lines.append('<ul class="msgs">' + "".join(f"<li>{escape(m)}</li>" for m in msgs) + "</ul>")
    return "\n".join(lines)


def _hints(checks):
    seen, texts = set(), []
    for c in checks:
        for h in c.hints:
            if h.id not in seen:
                seen.add(h.id)
                texts.append(h.text)
    if not texts:
        return ""
    return '<div class="hints"><b>Hints</b>' + "".join(f"<p>{escape(t)}</p>" for t in texts) + "</div>"


def _cell(row_side, i, differs, sep=False):
    classes = ["sep"] if sep else []
    if not row_side:
        classes.append("gap")
        text = "no such layer" if i == 0 else ""
    else:
        text = row_side[i]
        if i in differs:
            classes.append("diff")
    attr = f' class="{" ".join(classes)}"' if classes else ""
    return f"<td{attr}>{escape(str(text))}</td>"


def _layers(table):
    n = len(LAYER_COLUMNS)
    cols = "".join(f"<th>{escape(c)}</th>" for c in LAYER_COLUMNS[:-1])
    head = (f'<tr><th class="side" colspan="{n - 1}">expected</th>'
            f'<th class="side sep" colspan="{n}">found</th></tr>'
            f'<tr>{cols}<th class="sep">{escape(LAYER_COLUMNS[0])}</th>'
            + "".join(f"<th>{escape(c)}</th>" for c in LAYER_COLUMNS[1:]) + "</tr>")
    body = []
    for row in table.rows:
        expected = "".join(_cell(row.expected, i, row.differs) for i in range(n - 1))
        found = "".join(_cell(row.found, i, row.differs, sep=(i == 0)) for i in range(n))
        body.append(f"<tr>{expected}{found}</tr>")
    diff = table.differences
    label = f"{diff} row(s) differ" if diff else "all layers agree"
    opened = " open" if diff else ""
    return (f"<details{opened}><summary>Layers of {escape(table.call)} &middot; {label}</summary>"
            f'<div class="scroll"><table class="layers">{head}{"".join(body)}</table></div></details>')


def _function(result, function):
    checks = [c for c in result.checks if c.function == function]
    if not checks:
        return ""
    got, mx = sum(c.score for c in checks), sum(c.max_score for c in checks)
    parts = [f'<h2 id="{escape(function)}">{escape(function)} <span class="muted">{got:g} / {mx:g}</span></h2>']
    notes = sorted({c.note for c in checks if c.note})
    parts += [f'<p class="error">{escape(n)}</p>' for n in notes]
    parts.append(_hints(checks))
    parts += [_check(c) for c in checks]
    parts += [_layers(t) for t in result.tables if t.function == function]
    return "\n".join(p for p in parts if p)


def render(result):
    """The whole feedback page for one submission, as a string."""
    pct = 100.0 * result.score / result.max_score if result.max_score else 0.0
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Feedback: {escape(result.submission)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Feedback on {escape(result.submission)}</h1>",
        f'<div class="score">Score: {result.score:g} / {result.max_score:g}</div>',
        f'<div class="bar"><div style="width: {pct:.1f}%"></div></div>',
    ]
    if result.error:
        parts.append(f'<p class="error">Grading failed: {escape(result.error)}</p>')
    if result.version:
        parts.append(f'<p class="muted">Notebook version: {escape(result.version[2])}.</p>')
    parts += [f'<p class="muted">note: {escape(n)}</p>' for n in result.notes]
    parts.append(_summary(result))
    parts.append('<p class="muted">Each aspect is checked on several calls with different arguments. '
                 "In the layer tables, highlighted cells differ from the reference.</p>")
    parts += [_function(result, f) for f in FUNCTIONS]
    parts.append("</body></html>")
    return "\n".join(p for p in parts if p) + "\n"
