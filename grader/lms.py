"""Whose notebook is this file? Canvas's and Moodle's download names, read into students. Pure.

An instructor downloads a class's submissions as one zip; the LMS names each file (or folder)
after its student. This module turns the names of a download's files into the students to
grade, one notebook each, and says why every other file was left out. File and zip I/O is
in grader.lms_files (and grader.safe_zip); the gradebook and worksheet going back are in
grader.lms_export.

Canvas ("Download Submissions"; canvas-lms ContentZipper#get_filename and
#add_upload_submission): every file at the top of the zip is named

    <sortable name, non-word characters removed, lowercased>[_late]_<user id>_<attachment id>_<file name>

e.g. `smithjohn_late_12345_6789012_Residual_Networks.ipynb` (the whole prefix is lowercased,
so LATE arrives as `late`; both are read). The name is left out under anonymous grading, and is
the group's for a group assignment (with one member's user id). Canvas keeps ids out of the
name (it strips `_<digits>_` from it) because it reads them back the same way. A file the
student uploaded again under the same name is renamed by Canvas `-1`, `-2`, ... before its
extension (`Residual_Networks-1.ipynb`): the highest is the newest.

Moodle ("Download all submissions"; mod/assign locallib.php download_submissions): the prefix
is `<Full Name>_<participant id>` (underscores in the name turned into spaces; `Participant`
under blind marking; `<Group>-<Full Name>` for group submissions), then the plugin:

    <Full Name>_<participant id>_assignsubmission_file_<file name>       (flat)
    <Full Name>_<participant id>_assignsubmission_file[_]/<file path>    ("download submissions in folders")

The participant id is the one the grading worksheet writes as `Participant <id>`.
"""

import re
import unicodedata
from dataclasses import dataclass

CANVAS, MOODLE = "canvas", "moodle"
NOTEBOOK_SUFFIX = ".ipynb"

# Canvas: the optional name is lazy, so `late` and the ids are taken from the left; a name never
# holds `_<digits>_` (Canvas strips it), so the first `<digits>_<digits>_` are the ids.
_CANVAS_NAME = re.compile(r"(?:(?P<name>.+?)_)??(?:(?P<late>late)_)?(?P<id>\d+)_(?P<attachment>\d+)_(?P<file>.+)",
                          re.IGNORECASE | re.DOTALL)
_MOODLE_FILE = re.compile(r"(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_(?P<file>.+)", re.DOTALL)
_MOODLE_FOLDER = re.compile(r"(?P<name>.+?)_(?P<id>\d+)_assignsubmission_(?P<plugin>[a-z]+)_?", re.DOTALL)
# A resubmitted file's number, as Canvas appends it to the name: `Residual_Networks-2.ipynb`.
_RESUBMISSION = re.compile(r"-(\d{1,6})$")


@dataclass(frozen=True)
class Entry:
    """One file of a download: its path there ('/'-separated), when it was written, and an opaque
    reference the I/O edge uses to find it again."""

    name: str
    time: tuple = ()  # (year, month, day, hour, minute, second), as the zip or file system has it
    ref: object = None


@dataclass(frozen=True)
class Named:
    """What a file's name says: whose it is (lms, id, name, late) and the file the student uploaded."""

    lms: str
    id: str
    name: str
    file: str
    late: bool = False
    attachment: int = 0  # Canvas's attachment id: a later upload has a higher one


@dataclass(frozen=True)
class Student:
    """A student to grade: the LMS's name and id, the results folder, and the one notebook graded."""

    lms: str
    id: str
    name: str
    late: bool
    folder: str  # the results folder's name, made safe: `smithjohn_12345`, `John_Smith_77`
    entry: Entry  # the notebook graded
    file: str  # its name as the student uploaded it
    others: tuple = ()  # the student's other notebooks (older resubmissions), not graded

    def columns(self):
        """The gradebook's columns for this student (grader.batch.gradebook_csv)."""
        return (("lms", self.lms), ("lms_name", shown(self.name)), ("lms_id", self.id),
                ("late", "late" if self.late else ""))

    def record(self):
        """As OUT/lms.json keeps it (grader.lms_files): what the export matches on."""
        return {"folder": self.folder, "lms": self.lms, "id": self.id, "name": shown(self.name), "late": self.late,
                "file": shown(self.file), "entry": shown(self.entry.name)}


@dataclass(frozen=True)
class Placement:
    students: tuple  # Student, in folder order
    unplaced: tuple  # (Entry, why) for every file that is not graded as someone's notebook
    notes: tuple  # one line per student with several notebooks: which one is graded


def shown(text):
    """`text` fit for one line of a report: control characters, and bytes a file name had that are not
    UTF-8 (surrogate escapes), written as escapes; everything else as it is."""
    out = []
    for ch in text:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's stand-in for an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF or unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            out.append(ch.encode("unicode_escape", "backslashreplace").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def safe_folder_name(name, id_):
    """A results folder name for a student: the name folded to ASCII letters, digits and `_`, then the id."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    folded = re.sub(r"[^A-Za-z0-9]+", "_", folded).strip("_")[:60].strip("_")
    return f"{folded or 'student'}_{id_}"


def read_name(path):
    """What an entry's path says about whose file it is, or None when neither LMS named it.

    A Moodle per-participant folder may be anywhere in the path (a download unpacked into a
    folder and zipped again has one more level); a Canvas or flat Moodle name is the file's own.
    """
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    for i, part in enumerate(parts[:-1]):
        m = _MOODLE_FOLDER.fullmatch(part)
        if m:
            return Named(MOODLE, m["id"], m["name"].strip(), "/".join(parts[i + 1:]))
    base = parts[-1]
    m = _MOODLE_FILE.fullmatch(base)
    if m:
        return Named(MOODLE, m["id"], m["name"].strip(), m["file"])
    m = _CANVAS_NAME.fullmatch(base)
    if m:
        return Named(CANVAS, m["id"], m["name"] or "", m["file"], late=bool(m["late"]), attachment=int(m["attachment"]))
    return None


def _junk(path):
    """Why a file is no one's submission whatever its name (what an archiver adds), or ''."""
    parts = path.split("/")
    if "__MACOSX" in parts or parts[-1].startswith("._"):
        return "macOS archive metadata, not a submission"
    if parts[-1] in (".DS_Store", "Thumbs.db", "desktop.ini"):
        return "file system metadata, not a submission"
    return ""


def resubmission(file):
    """The number Canvas appended to a file uploaded again under the same name (0 for the first)."""
    stem = file.rsplit("/", 1)[-1]
    stem = stem[: -len(NOTEBOOK_SUFFIX)] if stem.lower().endswith(NOTEBOOK_SUFFIX) else stem
    m = _RESUBMISSION.search(stem)
    return int(m[1]) if m else 0


def _newest_first(candidates):
    """The student's notebooks, newest first: highest resubmission number, then the later upload
    (Canvas's attachment id), then the later time in the download, then the name."""
    return sorted(candidates, key=lambda c: (resubmission(c[1].file), c[1].attachment, c[0].time, c[0].name),
                  reverse=True)


def place(entries):
    """The students a download's entries belong to, each with the newest of their notebooks.

    Every entry that is not graded is in `unplaced` with the reason: not named by either LMS,
    not a notebook, archive metadata. A student whose files are all left out is not a student
    here (the export lists them as missing).
    """
    unplaced, by_student = [], {}
    for entry in entries:
        junk = _junk(entry.name)
        named = None if junk else read_name(entry.name)
        if junk:
            unplaced.append((entry, junk))
        elif named is None:
            unplaced.append((entry, "its name is neither Canvas's (<name>_<user id>_<file id>_<file>) nor "
                                         "Moodle's (<Full Name>_<id>_assignsubmission_file_<file>): whose is it?"))
        elif not named.file.lower().endswith(NOTEBOOK_SUFFIX):
            unplaced.append((entry, f"not a notebook ({named.lms} {named.id}): only {NOTEBOOK_SUFFIX} files "
                                         "are graded"))
        else:
            by_student.setdefault((named.lms, named.id), []).append((entry, named))
    students, notes, folders = [], [], set()
    for (lms, id_), candidates in sorted(by_student.items()):
        ranked = _newest_first(candidates)
        entry, named = ranked[0]
        folder = base = safe_folder_name(named.name, id_)
        clash = 1
        while folder in folders:  # the same id from both LMSs: never two students in one folder
            clash += 1
            folder = f"{base}-{clash}"
        folders.add(folder)
        students.append(Student(lms, id_, named.name, named.late, folder, entry, named.file,
                                tuple(e for e, _ in ranked[1:])))
        if len(ranked) > 1:
            older = ", ".join(shown(n.file) for _, n in ranked[1:])
            notes.append(f"{folder}: {len(ranked)} notebooks; grading the newest, {shown(named.file)} "
                         f"(the highest resubmission number -N, then the latest upload); not graded: {older}")
    students.sort(key=lambda s: s.folder)
    return Placement(tuple(students), tuple(unplaced), tuple(notes))
