"""Grades and feedback back into the LMS's own import files. Pure: rows in, rows out.

The LMS gives a file to fill; every cell we do not fill is written back as it came, so that
its import changes nothing else. Students are matched by the id the download's file names
carried (grader.lms), never by name. File I/O is in grader.lms_files.

Canvas: the gradebook CSV from Grades > Export (canvas-lms GradebookExporter): a header
`Student,ID,SIS User ID,SIS Login ID,Section,<custom columns>,<Assignment> (<id>),...,<totals>`
(`LastName,FirstName` for `Student` where the course splits names; SIS User ID only when
exported with SIS ids), then a row of `Manual Posting`/`Muted` marks when an assignment has
them, then `    Points Possible`, then one row per student. Its importer (GradebookImporter)
finds the header by `Student` and `ID`, skips the Points Possible and posting rows, matches a
student by ID (then SIS ids, then name), treats a blank or `-` cell as no score, and makes a
new assignment of any column it does not know: so nothing is added to this file (the late
mark stays in our own gradebook.csv), and only the chosen assignment's cells change.

Moodle: the assignment's offline grading worksheet (View all submissions > Download grading
worksheet; assignfeedback_offline): `Identifier,Full name,Email address,Status,Grade,Maximum
Grade,Grade can be changed,Last modified (submission),Last modified (grade),Feedback comments`
(more columns with more plugins), Identifier being `Participant <id>`. Its importer finds the
Identifier, Grade, `Last modified (grade)` and feedback columns by their header and the student
by the number after `Participant `. Feedback files go back as a zip of folders named as the
download named them (assignfeedback_file importziplib: `<name>_<participant id>_assignsubmission_file_`,
split at `_`, so the name itself may hold none).
"""

import html
import re
from dataclasses import dataclass

from grader.errors import GraderError

MISSING_CHOICES = ("empty", "zero")
_CANVAS_RESERVED = {"Student", "LastName", "FirstName", "ID", "SIS User ID", "SIS Login ID", "Section",
                    "Integration ID", "Root Account"}
_CANVAS_TOTALS = ("Current Score", "Current Points", "Current Grade", "Final Score", "Final Points", "Final Grade",
                  "Override Score", "Override Grade", "Override Status")
_CANVAS_ASSIGNMENT = re.compile(r"(?P<title>.*\S)\s*\((?P<id>\d+)\)\s*")
_CANVAS_POSTING = re.compile(r"\s*(Muted|Manual Posting.*)?\s*", re.IGNORECASE)
_KEPT_AS_IS = {"N/A", "EX", "ex"}  # Canvas: not assigned to this student; excused


class ExportError(GraderError):
    """The file given cannot be filled in (not the LMS's format, no such column, ...); the message says why."""


@dataclass(frozen=True)
class Graded:
    """One student of a graded download, as the export needs them."""

    id: str
    folder: str
    name: str
    late: bool
    score: float | None  # None: the student was placed but has no results.json yet
    max_score: float = 100.0
    feedback: str = ""


@dataclass(frozen=True)
class Filled:
    rows: tuple  # every row of the file, the graded cells filled
    column: str  # the column filled
    filled: tuple  # (id, value written)
    missing: tuple  # (id, name on the roster, why): on the roster, no graded submission
    unmatched: tuple  # Graded: graded, and on no row of the roster


def score_of(payload):
    """(score, max score) of a results.json payload: the max is its tests' (100 for every version)."""
    score = payload.get("score", 0)
    if not isinstance(score, (int, float)) or isinstance(score, bool):
        score = 0.0
    total = sum(t.get("max_score", 0) for t in payload.get("tests", []) if isinstance(t, dict)
                and isinstance(t.get("max_score", 0), (int, float)))
    return float(score), float(total or 100)


def feedback_line(payload, limit=600):
    """One line for the student: the score, and the checks not passed (or why grading failed).

    Only checks visible to the student are named (results.json's per-test visibility), so a hidden
    check does not leak through the LMS either.
    """
    score, most = score_of(payload)
    head = f"Score {score:g}/{most:g}."
    error = (payload.get("extra_data") or {}).get("error") or ""
    tests = [t for t in payload.get("tests", []) if isinstance(t, dict)]
    shown = [t for t in tests if t.get("visibility", "visible") == "visible"]
    failed = [f"{t.get('name', '?')} ({t.get('score', 0):g}/{t.get('max_score', 0):g})" for t in shown
              if t.get("score", 0) < t.get("max_score", 0)]
    if error:
        text = f"{head} Grading failed: {error}"
    elif failed:
        text = f"{head} Not passed: {'; '.join(failed)}."
    else:
        text = f"{head} Every check passed."
    if len(shown) < len(tests) and not error:
        text += " Other checks are not shown yet."
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def number(text):
    """A number as an LMS writes one ('10', '10.00', '10,5'), or None."""
    text = (text or "").strip()
    if not re.fullmatch(r"-?\d+(?:[.,]\d+)?", text):
        return None
    return float(text.replace(",", "."))


def points(score, most, out_of):
    """The score out of `out_of` points, as the LMS reads it: at most two decimals, no trailing zeros."""
    value = round(score / most * out_of, 2) if most else 0.0
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _cell(row, i):
    return row[i] if i < len(row) else ""


def _set(row, i, value):
    row.extend([""] * (i + 1 - len(row)))
    row[i] = value


def _missing_value(current, missing):
    """What a roster student with no graded submission gets: the cell as it was, or 0 (an excused or
    unassigned cell stays as it is)."""
    if missing == "zero" and current.strip() not in _KEPT_AS_IS:
        return "0"
    return current


def canvas_columns(header):
    """The header's assignment columns (`<title> (<id>)`), by index."""
    return [i for i, h in enumerate(header) if h.strip() not in _CANVAS_RESERVED
            and not any(t in h for t in _CANVAS_TOTALS) and _CANVAS_ASSIGNMENT.fullmatch(h.strip())]


def _canvas_column(header, wanted):
    candidates = canvas_columns(header)
    listed = ", ".join(repr(header[i]) for i in candidates) or "none"
    if wanted:
        exact = [i for i, h in enumerate(header) if h.strip() == wanted.strip()]
        if exact and header[exact[0]].strip() in _CANVAS_RESERVED:
            raise ExportError(f"--column {wanted!r} is a student column, not an assignment")
        if exact:
            return exact[0]
        named = [i for i in candidates
                 if wanted.strip() in _CANVAS_ASSIGNMENT.fullmatch(header[i].strip()).group("title", "id")]
        if len(named) == 1:
            return named[0]
        if named:
            raise ExportError(f"--column {wanted!r} names several assignments: {', '.join(header[i] for i in named)}; "
                              "give the whole header")
        raise ExportError(f"the gradebook has no column {wanted!r}; its assignments: {listed}")
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ExportError("the gradebook has no assignment column (`<name> (<id>)`): create the assignment in Canvas "
                          "and export the gradebook again")
    raise ExportError(f"the gradebook has several assignments: choose one with --column; they are: {listed}")


def fill_canvas(rows, graded, column=None, missing="empty", reasons=None):
    """The Canvas gradebook `rows` with the assignment's column filled from `graded` ({Canvas user id: Graded}).

    The score goes in out of the column's Points Possible (out of 100 when the row has none);
    `reasons` ({id: why}) say why a student with files in the download has nothing graded.
    """
    header = rows[0] if rows else []
    split_names = len(header) > 2 and "LastName" in header[0] and "ID" in header[2]
    if not split_names and not (len(header) > 1 and "Student" in header[0] and "ID" in header[1]):
        raise ExportError("not a Canvas gradebook export: its first row should begin Student,ID,... "
                          "(Grades > Export > Export Entire Gradebook)")
    id_col = 2 if split_names else 1  # where Canvas's importer reads the user id
    col = _canvas_column(header, column)
    out = [list(r) for r in rows]
    out_of, roster = None, {}
    for i, row in enumerate(out[1:], 1):
        if row and "Points Possible" in row[0]:
            out_of = number(_cell(row, col))
            continue
        if not any(c.strip() for c in row) or all(_CANVAS_POSTING.fullmatch(c) for c in row):
            continue
        sid = _cell(row, id_col).strip()
        if sid:
            roster.setdefault(sid, (i, row[0].strip()))
    return _fill(out, header[col], col, roster, graded, missing, out_of, None, reasons or {})


def fill_moodle(rows, graded, missing="empty", reasons=None):
    """The Moodle grading worksheet `rows` with Grade (out of each row's Maximum Grade, else 100) and
    Feedback comments filled from `graded` ({participant id: Graded}); a Feedback comments column is
    added when the worksheet has none."""
    header = [h.strip() for h in rows[0]] if rows else []
    if "Identifier" not in header or "Grade" not in header:
        raise ExportError("not a Moodle grading worksheet: its first row has no Identifier and Grade columns "
                          "(Assignment > View all submissions > Download grading worksheet, from a Moodle in English)")
    out = [list(r) for r in rows]
    if "Feedback comments" not in header:
        out[0].append("Feedback comments")
        header.append("Feedback comments")
    ident, grade, feedback = (header.index(h) for h in ("Identifier", "Grade", "Feedback comments"))
    most = header.index("Maximum Grade") if "Maximum Grade" in header else None
    name = header.index("Full name") if "Full name" in header else ident
    roster = {}
    for i, row in enumerate(out[1:], 1):
        m = re.search(r"(\d+)\s*$", _cell(row, ident))
        if m:
            roster.setdefault(m[1], (i, _cell(row, name).strip()))
    out_of = {i: number(_cell(out[i], most)) for i, _ in roster.values()} if most is not None else {}
    return _fill(out, "Grade", grade, roster, graded, missing, out_of, feedback, reasons or {})


def _fill(out, column, col, roster, graded, missing, out_of, feedback_col, reasons):
    """Fill `col` (and the feedback column) of each roster row from `graded`; list who is missing and unmatched."""
    filled, absent = [], []
    for sid, (i, name) in roster.items():
        row, g = out[i], graded.get(sid)
        scale = (out_of.get(i) if isinstance(out_of, dict) else out_of) or 100.0
        if g is not None and g.score is not None:
            value = points(g.score, g.max_score, scale)
            _set(row, col, value)
            if feedback_col is not None:
                _set(row, feedback_col, html.escape(g.feedback, quote=False))  # Moodle keeps comments as HTML
            filled.append((sid, value))
            continue
        if g is not None:
            why = f"placed in {g.folder} but not graded yet (no results.json): run grade again"
        elif sid in reasons:
            why = f"nothing of theirs was graded: {reasons[sid]}"
        else:
            why = "no notebook of theirs in the download"
        _set(row, col, _missing_value(_cell(row, col), missing))
        absent.append((sid, name, why))
    unmatched = tuple(g for sid, g in sorted(graded.items()) if sid not in roster)
    return Filled(tuple(out), column, tuple(filled), tuple(absent), unmatched)


def moodle_feedback_folder(full_name, participant_id):
    """The folder Moodle's feedback zip import reads a participant from: `<name>_<id>_assignsubmission_file_`.

    Moodle splits the path at `_` and takes the second part as the id, so underscores in the name
    become spaces (as its download makes them) and path separators go. The trailing `_` is what
    Moodle before 4.1 needs (it wants five parts); later versions read either.
    """
    name = re.sub(r"[\\/:*?\"<>|\x00-\x1f]", "", full_name.replace("_", " ")).strip() or "Participant"
    return f"{name}_{participant_id}_assignsubmission_file_"


def report_lines(filled, lms, roster_file):
    """The lines that list, apart, who is on the roster without a graded submission and who was graded but
    is on no row of it (never given anyone's grade)."""
    lines = [f"{lms}: {len(filled.filled)} graded into {filled.column!r} of {roster_file}; "
             f"{len(filled.missing)} missing; {len(filled.unmatched)} unmatched"]
    for sid, name, why in filled.missing:
        lines.append(f"missing: {name or '?'} (id {sid}): {why}")
    for g in filled.unmatched:
        lines.append(f"unmatched: {g.folder} (id {g.id}, {g.name or 'no name'}): graded, but not on the roster "
                     f"{roster_file}: no grade written for them")
    return lines
