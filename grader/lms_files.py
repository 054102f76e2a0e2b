"""An LMS download on disk, and the LMS's import files written back: the I/O edge of grader.lms
and grader.lms_export.

`gather` reads downloads (a zip, checked by grader.safe_zip, or the folder it unpacks to),
places each file (grader.lms.place) and stages each student's notebook as
OUT/.lms/<results folder>.ipynb, so that the batch names the results folder, the report and
the class page after the student (`smithjohn_12345`). It writes OUT/lms.json (whose each
folder is: the export reads it) and OUT/unplaced.txt (every file not graded, one line each).
`export_canvas` and `export_moodle` read OUT's results and write the LMS's import files, with
who is missing or unmatched listed apart in OUT/export.txt.
"""

import csv
import io
import json
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from grader import lms, lms_export, safe_zip
from grader.record import write_atomic

STAGE = ".lms"  # OUT/.lms/<folder>.ipynb: the notebooks graded, named for their students
ROSTER = "lms.json"
UNPLACED = "unplaced.txt"
EXPORT_LISTS = "export.txt"
CSV_BYTES = 64 << 20  # a gradebook or worksheet larger than this is not one


@dataclass
class Gathered:
    notebooks: list = field(default_factory=list)  # staged notebooks, one per student
    columns: dict = field(default_factory=dict)  # {results folder: the gradebook's LMS columns}
    lines: list = field(default_factory=list)  # for stderr: unplaced files, refusals, notes


def is_download(path):
    """Whether `path` is an LMS download: a zip, or a folder with a file or folder named as Canvas or Moodle
    names a submission (a folder of plain notebooks is graded as before)."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".zip"
    if not path.is_dir():
        return False
    try:
        children = list(os.scandir(path))
    except OSError:
        return False
    return any(lms.read_name(c.name + ("/x" if c.is_dir(follow_symlinks=False) else "")) for c in children)


def _folder_entries(root, caps):
    """(entries, refused) of an unpacked download: every regular file below `root`; links are not followed."""
    entries, refused, stack = [], [], [Path(root)]
    while stack:
        folder = stack.pop()
        try:
            children = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            refused.append((str(folder.relative_to(root)), f"cannot be listed ({exc.strerror or exc})"))
            continue
        for child in children:
            rel = Path(child.path).relative_to(root).as_posix()
            if child.is_symlink():
                refused.append((rel, "a symbolic link: not followed"))
            elif child.is_dir(follow_symlinks=False):
                stack.append(Path(child.path))
            elif not child.is_file(follow_symlinks=False):
                refused.append((rel, "not a regular file"))
            else:
                st = child.stat(follow_symlinks=False)
                if st.st_size > caps.entry_bytes:
                    refused.append((rel, f"{st.st_size} bytes, over the cap of {caps.entry_bytes} for one file"))
                    continue
                entries.append(lms.Entry(rel, tuple(time.localtime(st.st_mtime))[:6], Path(child.path)))
                if len(entries) > caps.entries:
                    raise safe_zip.Refused(f"over {caps.entries} files: refused")
    return entries, refused


def _copy_capped(src, dest, cap):
    """Copy a file of an unpacked download to `dest`, refusing one that grows past `cap` meanwhile."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        with open(src, "rb") as fin, open(tmp, "wb") as fout:
            data = fin.read(cap + 1)
            if len(data) > cap:
                return f"over the cap of {cap} bytes for one file"
            fout.write(data)
        os.replace(tmp, dest)
        return ""
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    finally:
        tmp.unlink(missing_ok=True)


def gather(paths, out, caps=safe_zip.CAPS):
    """Read the downloads `paths`, stage each placed student's notebook and write OUT/lms.json and
    OUT/unplaced.txt. Whatever is wrong with a file or a whole download, the others are placed."""
    out = Path(out)
    stage = out / STAGE
    stage.mkdir(parents=True, exist_ok=True)
    result, unplaced, left_out, entries, surveys = Gathered(), [], [], [], {}
    with tempfile.TemporaryDirectory(prefix=".lms-unpack-", dir=out) as scratch:
        for i, path in enumerate(map(Path, paths)):
            where = lms.shown(path.name)
            if path.is_dir():
                try:
                    found, refused = _folder_entries(path, caps)
                except safe_zip.Refused as exc:
                    unplaced.append(f"{where}: refused: {exc}")
                    continue
                entries += [lms.Entry(e.name, e.time, (i, where, e.ref)) for e in found]
            elif path.suffix.lower() == ".zip":
                try:
                    survey = safe_zip.survey(path, caps, scratch=Path(scratch) / str(i))
                except safe_zip.Refused as exc:
                    unplaced.append(f"{where}: refused: {exc}")
                    continue
                surveys[i] = survey
                refused = survey.refused
                result.lines += [f"note: {where}: {lms.shown(name)}: {how}" for name, how in survey.notes]
                entries += [lms.Entry(m.name, m.time, (i, where, m)) for m in survey.members]
            elif path.is_file():  # a notebook of a download given on its own: its name says whose it is
                where = lms.shown(str(path.parent))
                entries.append(lms.Entry(path.name, (), (i, where, path)))
                refused = ()
            else:
                unplaced.append(f"{where}: no such file or folder")
                continue
            left_out += [(where, name, f"refused: {why}") for name, why in refused]
        placement = lms.place(entries)
        left_out += [(e.ref[1], e.name, why) for e, why in placement.unplaced]
        failed = _stage(placement.students, stage, surveys, caps)
    students = []
    for s in placement.students:
        if s.folder in failed:
            left_out.append((s.entry.ref[1], s.entry.name, f"refused: {failed[s.folder]}"))
            continue
        students.append(s)
        result.notebooks.append(stage / f"{s.folder}.ipynb")
        result.columns[s.folder] = s.columns()
    unplaced += [f"{where}: {lms.shown(name)}: {why}" for where, name, why in left_out]
    result.lines += [f"note: {line}" for line in placement.notes]
    result.lines += [f"unplaced: {line}" for line in unplaced]
    roster = {"lms": sorted({s.lms for s in students}), "students": [s.record() for s in students],
              "left_out": _left_out(left_out, {(s.lms, s.id) for s in students}),
              "unplaced": unplaced, "notes": list(placement.notes)}
    write_atomic(out / ROSTER, json.dumps(roster, indent=1) + "\n")
    write_atomic(out / UNPLACED, "".join(f"{line}\n" for line in unplaced))
    return result


def _left_out(left_out, graded):
    """[{lms, id, why}] for the files left out whose name says whose they are, and whose student has no
    notebook graded: the export says why they are missing."""
    out = []
    for _, name, why in left_out:
        named = lms.read_name(name)
        if named and (named.lms, named.id) not in graded:
            out.append({"lms": named.lms, "id": named.id, "why": f"{lms.shown(name)}: {why}"})
    return out


def _stage(students, stage, surveys, caps):
    """Unpack or copy each student's notebook to STAGE/<folder>.ipynb; {folder: why} for those refused."""
    failed, wanted = {}, {}
    for s in students:
        i, _, ref = s.entry.ref
        dest = stage / f"{s.folder}.ipynb"
        if isinstance(ref, safe_zip.Member):
            wanted.setdefault(i, []).append((ref, dest, s.folder))
        else:
            why = _copy_capped(ref, dest, caps.entry_bytes)
            if why:
                failed[s.folder] = why
    for i, items in wanted.items():
        folder_of = {id(member): folder for member, _, folder in items}
        for member, why in safe_zip.unpack(surveys[i], [(m, d) for m, d, _ in items], caps):
            failed[folder_of[id(member)]] = why
    return failed


# --- export ---------------------------------------------------------------------------------------------------


def read_roster(out):
    """OUT/lms.json's students and the files left out that name theirs, or ExportError saying how to make it."""
    path = Path(out) / ROSTER
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        students = [s for s in data["students"] if isinstance(s, dict) and s.get("id") and s.get("folder")]
        left_out = [s for s in data.get("left_out", []) if isinstance(s, dict)]
    except FileNotFoundError:
        raise lms_export.ExportError(f"{path} is missing: grade the LMS download with --out {out} first") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise lms_export.ExportError(f"{path} cannot be read ({exc}): grade the download again") from None
    return students, left_out


def graded_students(out, kind):
    """({LMS id: lms_export.Graded} of OUT's students placed from a `kind` (canvas, moodle) download,
    {LMS id: why nothing of theirs was graded} for the students whose files were all left out)."""
    out = Path(out)
    students, left_out = read_roster(out)
    kinds = {s.get("lms") for s in students}
    if students and kind not in kinds:
        raise lms_export.ExportError(f"{out} was graded from a {', '.join(sorted(map(str, kinds)))} download, "
                                     f"not {kind}")
    graded = {}
    for s in students:
        if s.get("lms") != kind:
            continue
        folder = out / Path(str(s["folder"])).name
        try:
            payload = json.loads((folder / "results.json").read_text(encoding="utf-8"))
            score, most = lms_export.score_of(payload)
            feedback = lms_export.feedback_line(payload)
        except (OSError, ValueError, AttributeError, TypeError):
            score, most, feedback = None, 100.0, ""
        graded[str(s["id"])] = lms_export.Graded(str(s["id"]), folder.name, str(s.get("name", "")),
                                                 bool(s.get("late")), score, most, feedback)
    reasons = {}
    for item in left_out:
        if item.get("lms") == kind and str(item.get("id")) not in graded:
            reasons.setdefault(str(item.get("id")), []).append(str(item.get("why")))
    return graded, {sid: "; ".join(whys) for sid, whys in reasons.items()}


@dataclass(frozen=True)
class Table:
    rows: list
    delimiter: str = ","
    bom: bool = False
    newline: str = "\n"


def read_table(path):
    """The rows of an LMS's CSV export as it wrote it: its delimiter (`,` or `;`), BOM and line ends kept."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(CSV_BYTES + 1)
    except OSError as exc:
        raise lms_export.ExportError(f"{path} cannot be read ({exc.strerror or exc})") from None
    if len(data) > CSV_BYTES:
        raise lms_export.ExportError(f"{path} is over {CSV_BYTES >> 20} MiB: not an LMS's gradebook")
    bom = data.startswith(b"\xef\xbb\xbf")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise lms_export.ExportError(f"{path} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}): "
                                     "download it from the LMS again, or save it as CSV UTF-8") from None
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=lambda d: len(next(csv.reader([first], delimiter=d), [])))
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise lms_export.ExportError(f"{path} is not a CSV file ({exc})") from None
    return Table(rows, delimiter, bom, "\r\n" if "\r\n" in text[:65536] else "\n")


def write_table(path, table, rows):
    buf = io.StringIO()
    csv.writer(buf, delimiter=table.delimiter, lineterminator=table.newline).writerows(rows)
    write_atomic(path, ("\ufeff" if table.bom else "") + buf.getvalue())


def _lists(out, lines):
    write_atomic(Path(out) / EXPORT_LISTS, "".join(f"{line}\n" for line in lines))
    return lines


def export_canvas(out, gradebook, to, column=None, missing="empty"):
    """Write TO: the Canvas gradebook with the assignment's column filled; return the lines to show
    (also in OUT/export.txt)."""
    graded, reasons = graded_students(out, lms.CANVAS)
    table = read_table(gradebook)
    filled = lms_export.fill_canvas(table.rows, graded, column, missing, reasons)
    write_table(to, table, filled.rows)
    return _lists(out, lms_export.report_lines(filled, "canvas", Path(gradebook).name))


def export_moodle(out, worksheet, to, feedback_zip=None, missing="empty"):
    """Write TO: the Moodle grading worksheet with Grade and Feedback comments filled; and, when asked, the
    zip of each graded student's report.html for "Upload multiple feedback files in a zip"."""
    graded, reasons = graded_students(out, lms.MOODLE)
    table = read_table(worksheet)
    filled = lms_export.fill_moodle(table.rows, graded, missing, reasons)
    write_table(to, table, filled.rows)
    lines = lms_export.report_lines(filled, "moodle", Path(worksheet).name)
    if feedback_zip is not None:
        names = _worksheet_names(table.rows)
        files = {}
        for sid, _ in filled.filled:
            report = Path(out) / graded[sid].folder / "report.html"
            if report.is_file():
                folder = lms_export.moodle_feedback_folder(names.get(sid) or graded[sid].name, sid)
                files[f"{folder}/report.html"] = report
        _write_zip(feedback_zip, files)
        lines.append(f"feedback files: {len(files)} report.html in {feedback_zip}")
    return _lists(out, lines)


def _worksheet_names(rows):
    """{participant id: Full name} from a worksheet (the name Moodle's own download used)."""
    header = [h.strip() for h in rows[0]] if rows else []
    if "Identifier" not in header or "Full name" not in header:
        return {}
    ident, name = header.index("Identifier"), header.index("Full name")
    names = {}
    for row in rows[1:]:
        if len(row) > max(ident, name):
            sid = "".join(ch for ch in row[ident] if ch.isdigit())
            names.setdefault(sid, row[name].strip())
    return names


def _write_zip(path, files):
    """A zip of {name in the zip: file}, written beside `path` and renamed into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, src in sorted(files.items()):
                with open(src, "rb") as fin, zf.open(name, "w") as fout:
                    shutil.copyfileobj(fin, fout)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
