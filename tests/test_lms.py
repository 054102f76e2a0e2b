"""Canvas and Moodle downloads in, their import files out; and a download is as untrusted as a notebook.

Every download here is written by its test, named as Canvas or Moodle name their files (see
grader/lms.py for where those layouts come from). Placing files and writing the import files
need no grading: most tests write the results folders a batch would leave (results.json,
report.html) and check that every student on the roster gets exactly the grade their results
hold, matched by id. Two slow tests grade real notebooks end to end (two kernels in all).
"""

import csv
import io
import json
import os
import stat
import struct
import zipfile

import pytest

import notebooks
from grader import lms, lms_export, lms_files, safe_zip
from grader.cli import main

NB = b'{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'  # placing a file never reads it
TESTS = [("identity_block: shapes", 20), ("identity_block: activations", 20), ("convolutional_block: shapes", 20),
         ("ResNet50: shapes", 30), ("ResNet50: activations", 10)]


def write_zip(path, files):
    """A zip of {name: bytes or ZipInfo-ready (ZipInfo, bytes)}, as an LMS writes it (deflate)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            if isinstance(data, tuple):
                z.writestr(*data)
            else:
                z.writestr(name, data)
    return path


def fake_result(out, folder, lost=(), error=""):
    """OUT/<folder>/results.json and report.html as a batch writes them: every test passes but those in
    `lost` ({test name: score}); `error` makes it a failed grading (score 0)."""
    tests = [{"name": n, "score": 0 if error else lost.get(n, p) if lost else p, "max_score": p,
              "visibility": "visible", "output": ""} for n, p in TESTS]
    payload = {"score": sum(t["score"] for t in tests), "tests": tests, "output": "",
               "extra_data": {"error": error, "error_kind": "unreadable" if error else "", "limits": []}}
    (out / folder).mkdir(parents=True, exist_ok=True)
    (out / folder / "results.json").write_text(json.dumps(payload))
    (out / folder / "report.html").write_text(f"<title>{folder}</title>report of {folder}")
    return payload["score"]


def read_csv(path):
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def column(rows, header, key=1):
    """{row's key cell: its cell under `header`} of the student rows."""
    col = rows[0].index(header)
    return {r[key]: r[col] for r in rows[1:] if r and r[key].strip() and "Points Possible" not in r[0]}


# --- names --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name, lms_, id_, who, late, file", [
    ("smithjohn_12345_6789012_Residual_Networks.ipynb", "canvas", "12345", "smithjohn", False,
     "Residual_Networks.ipynb"),
    ("smithjohn_LATE_12345_6789012_Residual_Networks-1.ipynb", "canvas", "12345", "smithjohn", True,
     "Residual_Networks-1.ipynb"),
    ("smithjohn_late_12345_6789012_hw_2_3.ipynb", "canvas", "12345", "smithjohn", True, "hw_2_3.ipynb"),
    ("late_12345_6789012_x.ipynb", "canvas", "12345", "", True, "x.ipynb"),  # anonymous grading: no name
    ("John Smith_77_assignsubmission_file_Residual_Networks.ipynb", "moodle", "77", "John Smith", False,
     "Residual_Networks.ipynb"),
    ("John Smith_77_assignsubmission_file_/sub/Residual_Networks.ipynb", "moodle", "77", "John Smith", False,
     "sub/Residual_Networks.ipynb"),
    ("unpacked/Team A-John Smith_77_assignsubmission_file/x.ipynb", "moodle", "77", "Team A-John Smith", False,
     "x.ipynb"),
    ("Participant_5_assignsubmission_onlinetext_onlinetext.html", "moodle", "5", "Participant", False,
     "onlinetext.html"),
])
def test_whose_file_it_is_is_read_from_the_name_each_lms_gives_it(name, lms_, id_, who, late, file):
    named = lms.read_name(name)
    assert (named.lms, named.id, named.name, named.late, named.file) == (lms_, id_, who, late, file)


def test_the_newest_of_a_students_notebooks_is_graded_and_the_rest_are_listed_with_why():
    entries = [lms.Entry(n) for n in (
        "smithjohn_12345_900001_Residual_Networks.ipynb", "smithjohn_12345_900002_Residual_Networks-2.ipynb",
        "smithjohn_12345_900003_Residual_Networks-1.ipynb", "doejane_23456_900004_essay.pdf", "README.txt",
        "__MACOSX/._doejane_23456_900004_x.ipynb")]
    p = lms.place(entries)
    assert [(s.folder, s.file) for s in p.students] == [("smithjohn_12345", "Residual_Networks-2.ipynb")]
    assert len(p.students[0].others) == 2 and "grading the newest, Residual_Networks-2.ipynb" in p.notes[0]
    why = {e.name: w for e, w in p.unplaced}
    assert set(why) == {"doejane_23456_900004_essay.pdf", "README.txt", "__MACOSX/._doejane_23456_900004_x.ipynb"}
    assert "not a notebook" in why["doejane_23456_900004_essay.pdf"] and "neither Canvas" in why["README.txt"]
    assert "macOS" in why["__MACOSX/._doejane_23456_900004_x.ipynb"]


# --- Canvas round trip ----------------------------------------------------------------------------------------------

GRADEBOOK = [
    ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "ResNets (4242)", "Quiz 1 (4243)", "Current Score"],
    ["", "", "", "", "", "Manual Posting", "", ""],
    ["    Points Possible", "", "", "", "", "10.00", "5.00", "(read only)"],
    ["Smith, John", "12345", "s1", "jsmith", "A", "", "3.00", "60"],
    ["Doe, Jane", "23456", "s2", "jdoe", "A", "", "4.00", "80"],
    ["Lee, Ann", "34567", "s3", "alee", "B", "", "", ""],
    ["Park, Kim", "45678", "s4", "kpark", "B", "7", "5.00", "100"],
]


def canvas_download(tmp_path):
    return write_zip(tmp_path / "submissions.zip", {
        "smithjohn_12345_900001_Residual_Networks.ipynb": b"older " + NB,
        "smithjohn_12345_900002_Residual_Networks-1.ipynb": NB,
        "doejane_late_23456_900003_Residual_Networks.ipynb": NB,
        "leeann_34567_900004_writeup.pdf": b"%PDF",
        "ghostg_99999_900005_Residual_Networks.ipynb": NB,
        "README.txt": b"hello",
    })


def test_a_canvas_download_round_trip_gives_each_student_their_grade_by_id(tmp_path, capsys):
    out = tmp_path / "out"
    gathered = lms_files.gather([canvas_download(tmp_path)], out)
    staged = sorted(p.name for p in gathered.notebooks)
    assert staged == ["doejane_23456.ipynb", "ghostg_99999.ipynb", "smithjohn_12345.ipynb"]
    assert (out / ".lms" / "smithjohn_12345.ipynb").read_bytes() == NB  # the -1 resubmission, not the older file
    assert gathered.columns["doejane_23456"] == (("lms", "canvas"), ("lms_name", "doejane"), ("lms_id", "23456"),
                                                 ("late", "late"))
    unplaced = (out / "unplaced.txt").read_text().splitlines()
    assert len(unplaced) == 2 and any("writeup.pdf" in u and "not a notebook" in u for u in unplaced)
    assert any("README.txt" in u for u in unplaced)
    assert any("2 notebooks; grading the newest, Residual_Networks-1.ipynb" in line for line in gathered.lines)

    scores = {"12345": fake_result(out, "smithjohn_12345", lost={"ResNet50: activations": 0, "ResNet50: shapes": 25}),
              "23456": fake_result(out, "doejane_23456", lost={"identity_block: shapes": 0}),
              "99999": fake_result(out, "ghostg_99999")}
    assert scores == {"12345": 85, "23456": 80, "99999": 100}
    book, to = tmp_path / "gradebook.csv", tmp_path / "import.csv"
    with open(book, "w", newline="", encoding="utf-8-sig") as f:  # Canvas may write a BOM: it is kept
        csv.writer(f, lineterminator="\n").writerows(GRADEBOOK)
    capsys.readouterr()
    assert main(["export", str(out), "--canvas", str(book), "--column", "ResNets", "--to", str(to)]) == 0
    rows = read_csv(to)
    # out of Points Possible (10): 85 -> 8.5; no submission: the cell as exported (Park's earlier 7 stays)
    assert column(rows, "ResNets (4242)") == {"12345": "8.5", "23456": "8", "34567": "", "45678": "7"}
    assert column(rows, "Quiz 1 (4243)") == column(GRADEBOOK, "Quiz 1 (4243)")  # nothing else changes
    assert rows[:3] == GRADEBOOK[:3] and len(rows) == len(GRADEBOOK) and to.read_bytes().startswith(b"\xef\xbb\xbf")
    err = capsys.readouterr().err
    lists = (out / "export.txt").read_text()
    for text in (err, lists):
        assert ("missing: Lee, Ann (id 34567): nothing of theirs was graded: leeann_34567_900004_writeup.pdf: "
                "not a notebook") in text
        assert "missing: Park, Kim (id 45678): no notebook of theirs in the download" in text
        assert "unmatched: ghostg_99999 (id 99999" in text
        assert "Smith, John" not in text and "Doe, Jane" not in text

    assert main(["export", str(out), "--canvas", str(book), "--column", "4242", "--missing", "zero",
                 "--to", str(to)]) == 0
    assert column(read_csv(to), "ResNets (4242)") == {"12345": "8.5", "23456": "8", "34567": "0", "45678": "0"}


def test_a_canvas_gradebook_export_says_plainly_what_is_wrong(tmp_path, capsys):
    out = tmp_path / "out"
    lms_files.gather([canvas_download(tmp_path)], out)
    book, to = tmp_path / "gradebook.csv", tmp_path / "import.csv"
    book.write_text("".join(",".join(r) + "\n" for r in GRADEBOOK).replace("Smith, John", "Smith"))
    assert main(["export", str(out), "--canvas", str(book), "--to", str(to)]) == 2  # two assignments: which one?
    assert "several assignments: choose one with --column" in capsys.readouterr().err and not to.exists()
    assert main(["export", str(out), "--canvas", str(book), "--column", "Nope", "--to", str(to)]) == 2
    assert "no column 'Nope'" in capsys.readouterr().err
    book.write_text("Name,Score\nSmith,3\n")
    assert main(["export", str(out), "--canvas", str(book), "--to", str(to)]) == 2
    assert "not a Canvas gradebook export" in capsys.readouterr().err
    book.write_bytes(b"Student,ID\n\xff\xfe,1\n")
    assert main(["export", str(out), "--canvas", str(book), "--to", str(to)]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nowhere"), "--canvas", str(book), "--to", str(to)]) == 2
    assert "lms.json is missing: grade the LMS download" in capsys.readouterr().err
    semicolons = [[c.replace(".", ",") for c in r] for r in GRADEBOOK[:1] + GRADEBOOK[2:4]]
    book.write_text("".join(";".join(r) + "\n" for r in semicolons))
    fake_result(out, "smithjohn_12345", lost={"ResNet50: shapes": 15})
    assert main(["export", str(out), "--canvas", str(book), "--column", "ResNets (4242)", "--to", str(to)]) == 0
    assert to.read_text().splitlines()[2].split(";")[5] == "8.5"  # a Canvas set to `;`: written back with `;`


def test_grading_a_canvas_download_names_each_student_by_the_lms(tmp_path, capsys):
    """No kernel: with no expected outputs every student still gets a (failed) result, named for them."""
    out = tmp_path / "out"
    args = ["grade", str(canvas_download(tmp_path)), "--out", str(out), "--expected", str(tmp_path / "nowhere"),
            "--no-progress"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "unplaced: submissions.zip: leeann_34567_900004_writeup.pdf: not a notebook" in err
    assert sorted(p.parent.name for p in out.glob("*/results.json")) == ["doejane_23456", "ghostg_99999",
                                                                          "smithjohn_12345"]
    book = read_csv(out / "gradebook.csv")
    assert book[0][:6] == ["submission", "lms", "lms_name", "lms_id", "late", "score"]
    assert {r[0]: r[1:5] for r in book[1:]} == {"doejane_23456": ["canvas", "doejane", "23456", "late"],
                                                "ghostg_99999": ["canvas", "ghostg", "99999", ""],
                                                "smithjohn_12345": ["canvas", "smithjohn", "12345", ""]}
    assert "smithjohn_12345.ipynb" in (out / "smithjohn_12345" / "report.html").read_text()
    assert "smithjohn_12345" in (out / "class.html").read_text()
    roster = json.loads((out / "lms.json").read_text())
    assert {s["id"]: s["folder"] for s in roster["students"]} == {"12345": "smithjohn_12345", "23456": "doejane_23456",
                                                                  "99999": "ghostg_99999"}


# --- Moodle round trip ----------------------------------------------------------------------------------------------

WORKSHEET = [
    ["Identifier", "Full name", "Email address", "Status", "Grade", "Maximum Grade", "Grade can be changed",
     "Last modified (submission)", "Last modified (grade)", "Feedback comments"],
    ["Participant 77", "John Smith", "js@example.edu", "Submitted for grading", "", "10.00", "Yes",
     "Monday, 1 April 2024, 10:00 AM", "-", ""],
    ["Participant 88", "Ana María López", "al@example.edu", "Submitted for grading - 2 hours late", "", "100.00", "Yes",
     "Monday, 1 April 2024, 11:00 AM", "-", ""],
    ["Participant 55", "Zed Q", "zq@example.edu", "Submitted for grading", "", "100.00", "Yes", "-", "-", ""],
    ["Participant 66", "Mo Absent", "ma@example.edu", "No submission", "", "100.00", "Yes", "-", "-", "keep me"],
]


def moodle_download(tmp_path):
    return write_zip(tmp_path / "moodle.zip", {
        "John Smith_77_assignsubmission_file_/Residual_Networks.ipynb": NB,  # Moodle < 4.1: folder ends in _
        "Ana María López_88_assignsubmission_file/nested/Residual_Networks.ipynb": NB,  # Moodle >= 4.1
        "Bo Chen_99_assignsubmission_file_Residual_Networks.ipynb": NB,  # not in folders
        "Zed Q_55_assignsubmission_onlinetext_/onlinetext.html": b"<p>see attached</p>",
        "__MACOSX/John Smith_77_assignsubmission_file_/._Residual_Networks.ipynb": b"\x00\x05\x16\x07",
    })


def moodle_feedback_id(path):
    """The participant a feedback file goes to, read as Moodle's importer reads it (importziplib.php:
    each path part split at `_` into at most five; the second must be a number; then the plugin)."""
    for part in path.split("/"):
        info = part.split("_", 4)
        if len(info) >= 4 and info[1].isdigit() and (info[2], info[3]) == ("assignsubmission", "file"):
            return info[1]
    return None


def test_a_moodle_download_round_trip_fills_grade_feedback_and_feedback_files_by_id(tmp_path, capsys):
    out = tmp_path / "out"
    gathered = lms_files.gather([moodle_download(tmp_path)], out)
    assert sorted(p.name for p in gathered.notebooks) == ["Ana_Maria_Lopez_88.ipynb", "Bo_Chen_99.ipynb",
                                                          "John_Smith_77.ipynb"]
    unplaced = (out / "unplaced.txt").read_text()
    assert "onlinetext.html: not a notebook (moodle 55)" in unplaced and "macOS archive metadata" in unplaced
    fake_result(out, "John_Smith_77", lost={"ResNet50: activations": 0})
    fake_result(out, "Ana_Maria_Lopez_88", error="Residual_Networks.ipynb is not a notebook")
    fake_result(out, "Bo_Chen_99")
    sheet, to, fz = tmp_path / "worksheet.csv", tmp_path / "import.csv", tmp_path / "feedback.zip"
    with open(sheet, "w", newline="") as f:
        csv.writer(f).writerows(WORKSHEET)
    capsys.readouterr()
    assert main(["export", str(out), "--moodle", str(sheet), "--to", str(to), "--feedback-zip", str(fz)]) == 0
    rows = read_csv(to)
    assert column(rows, "Grade", key=0) == {"Participant 77": "9", "Participant 88": "0", "Participant 55": "",
                                            "Participant 66": ""}
    feedback = column(rows, "Feedback comments", key=0)
    assert feedback["Participant 77"] == "Score 90/100. Not passed: ResNet50: activations (0/10)."
    assert feedback["Participant 88"] == "Score 0/100. Grading failed: Residual_Networks.ipynb is not a notebook"
    assert feedback["Participant 66"] == "keep me" and feedback["Participant 55"] == ""
    assert [r[:4] + r[5:9] for r in rows] == [r[:4] + r[5:9] for r in WORKSHEET]  # the rest as Moodle wrote it
    err = capsys.readouterr().err
    assert ("missing: Zed Q (id 55): nothing of theirs was graded: Zed Q_55_assignsubmission_onlinetext_/"
            "onlinetext.html: not a notebook") in err
    assert "missing: Mo Absent (id 66): no notebook of theirs in the download" in err
    assert "unmatched: Bo_Chen_99 (id 99" in err and "unmatched: Bo_Chen_99" in (out / "export.txt").read_text()
    with zipfile.ZipFile(fz) as z:
        names = sorted(z.namelist())
        assert names == ["Ana María López_88_assignsubmission_file_/report.html",
                         "John Smith_77_assignsubmission_file_/report.html"]
        assert {moodle_feedback_id(n): z.read(n).decode() for n in names} == {
            "77": "<title>John_Smith_77</title>report of John_Smith_77",
            "88": "<title>Ana_Maria_Lopez_88</title>report of Ana_Maria_Lopez_88"}

    assert main(["export", str(out), "--moodle", str(sheet), "--to", str(to), "--missing", "zero"]) == 0
    assert column(read_csv(to), "Grade", key=0) == {"Participant 77": "9", "Participant 88": "0",
                                                    "Participant 55": "0", "Participant 66": "0"}
    assert main(["export", str(out), "--canvas", str(sheet), "--to", str(to)]) == 2
    assert "graded from a moodle download, not canvas" in capsys.readouterr().err


def test_a_moodle_feedback_folder_is_read_back_as_its_participant_even_with_underscores_in_the_name():
    folder = lms_export.moodle_feedback_folder("Mary_Ann O'Neil/Smith", "123")
    assert folder == "Mary Ann O'NeilSmith_123_assignsubmission_file_"
    assert moodle_feedback_id(f"{folder}/report.html") == "123"


def test_an_unpacked_download_is_placed_as_its_zip_and_links_in_it_are_not_followed(tmp_path):
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(moodle_download(tmp_path)) as z:
        z.extractall(folder)
    (folder / "Eve_44_assignsubmission_file_").mkdir()
    (folder / "Eve_44_assignsubmission_file_" / "Residual_Networks.ipynb").symlink_to("/etc/passwd")
    (folder / os.fsdecode(b"J\xff_91_assignsubmission_file_nb.ipynb")).write_bytes(NB)  # a name that is no UTF-8
    assert lms_files.is_download(folder) and not lms_files.is_download(tmp_path / "out")
    out = tmp_path / "out"
    gathered = lms_files.gather([folder], out)
    assert sorted(p.name for p in gathered.notebooks) == ["Ana_Maria_Lopez_88.ipynb", "Bo_Chen_99.ipynb",
                                                          "J_91.ipynb", "John_Smith_77.ipynb"]
    assert "Eve_44_assignsubmission_file_/Residual_Networks.ipynb: refused: a symbolic link: not followed" in (
        out / "unplaced.txt").read_text()
    assert {s["id"]: s["name"] for s in json.loads((out / "lms.json").read_text())["students"]}["91"] == "J\\xff"


# --- a download is untrusted --------------------------------------------------------------------------------------

GOOD = "smithjohn_12345_900001_Residual_Networks.ipynb"


def gather_one(tmp_path, files, caps=safe_zip.CAPS):
    """Place a download of a good notebook and the files given; (staged ids, unplaced.txt, stderr lines)."""
    out = tmp_path / "out"
    gathered = lms_files.gather([write_zip(tmp_path / "dl.zip", {GOOD: NB, **files})], out, caps)
    ids = sorted(s["id"] for s in json.loads((out / "lms.json").read_text())["students"])
    assert len(ids) == len(gathered.notebooks)
    return ids, (out / "unplaced.txt").read_text(), gathered.lines


def symlink_entry(name):
    info = zipfile.ZipInfo(name)
    info.create_system, info.external_attr = 3, (stat.S_IFLNK | 0o777) << 16
    return info, "/etc/passwd"


@pytest.mark.parametrize("name, make, why", [
    ("../doejane_23456_2_Residual_Networks.ipynb", None, "its path climbs out of the folder (..)"),
    ("a/../../doejane_23456_2_Residual_Networks.ipynb", None, "its path climbs out of the folder (..)"),
    ("/tmp/doejane_23456_2_Residual_Networks.ipynb", None, "an absolute path: it would land outside the folder"),
    ("C:\\doejane_23456_2_Residual_Networks.ipynb", None, "an absolute path: it would land outside the folder"),
    ("doejane_23456_2_Residual_Networks.ipynb", symlink_entry, "a symbolic link: it could point anywhere"),
])
def test_an_entry_that_would_land_outside_the_folder_is_refused_and_the_rest_are_placed(tmp_path, name, make, why):
    ids, unplaced, lines = gather_one(tmp_path, {name: make(name) if make else NB})
    assert ids == ["12345"]  # only the good one: doejane is refused, not placed
    assert f"dl.zip: {name}: refused: {why}" in unplaced.splitlines()
    assert f"unplaced: dl.zip: {name}: refused: {why}" in lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dl.zip", "out"]  # nothing written beside the results
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [".lms", "lms.json", "unplaced.txt"]
    assert sorted(p.name for p in (tmp_path / "out" / ".lms").iterdir()) == ["smithjohn_12345.ipynb"]


def patch_sizes(path, name, size):
    """Make `name`'s entry declare `size` bytes unpacked, in the central directory (and its local header)."""
    data = bytearray(path.read_bytes())
    raw = name.encode()
    at = data.find(b"PK\x01\x02")
    while at >= 0:
        n = struct.unpack("<H", data[at + 28:at + 30])[0]
        if data[at + 46:at + 46 + n] == raw:
            data[at + 24:at + 28] = struct.pack("<I", size)
            offset = struct.unpack("<I", data[at + 42:at + 46])[0]
            data[offset + 22:offset + 26] = struct.pack("<I", size)
        at = data.find(b"PK\x01\x02", at + 4)
    path.write_bytes(bytes(data))


def test_a_bomb_is_stopped_by_declared_size_ratio_or_total_before_unpacking(tmp_path):
    big = "doejane_23456_2_Residual_Networks.ipynb"
    path = write_zip(tmp_path / "dl.zip", {GOOD: NB, big: NB})
    patch_sizes(path, big, 3 << 30)  # declares 3 GiB
    out = tmp_path / "out"
    gathered = lms_files.gather([path], out)
    assert [p.name for p in gathered.notebooks] == ["smithjohn_12345.ipynb"]
    assert f"dl.zip: {big}: refused: it declares 3.0 GiB unpacked, over the cap of 64.0 MiB for one file" in (
        out / "unplaced.txt").read_text()

    ids, unplaced, _ = gather_one(tmp_path, {big: bytes(2 << 20)})  # 2 MiB of zeros packs ~1000 times
    assert ids == ["12345"] and "times its packed size (the cap is 100): a zip bomb?" in unplaced

    small = safe_zip.Caps(total_bytes=len(NB) + 10)
    ids, unplaced, lines = gather_one(tmp_path, {big: NB}, small)
    assert ids == [] and unplaced.splitlines() == [
        f"dl.zip: refused: its files declare {2 * len(NB)} bytes unpacked in all, over the cap of {len(NB) + 10} "
        "bytes: refused before unpacking (a zip bomb?)"]


def test_a_bomb_by_entry_count_is_refused_before_zipfile_reads_its_directory(tmp_path, capsys, monkeypatch):
    path = tmp_path / "dl.zip"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(GOOD, NB)
        for i in range(safe_zip.CAPS.entries):
            z.writestr(f"{i}", b"")

    def unread(*args, **kwargs):
        raise AssertionError("the directory was read before the count was checked")

    monkeypatch.setattr(safe_zip.zipfile, "ZipFile", unread)
    out = tmp_path / "out"
    assert main(["grade", str(path), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    line = "dl.zip: refused: it declares 10001 entries, over the cap of 10000: refused before unpacking (a zip bomb?)"
    assert f"unplaced: {line}" in err and "error: no notebook in" in err and "Traceback" not in err
    assert (out / "unplaced.txt").read_text() == line + "\n"


def test_an_entry_that_inflates_past_its_declared_size_is_refused_while_unpacking(tmp_path):
    liar = "doejane_23456_2_Residual_Networks.ipynb"
    path = write_zip(tmp_path / "dl.zip", {GOOD: NB, liar: NB + b" " * 100_000})
    patch_sizes(path, liar, 1000)  # declares 1000 bytes; inflates to 100 kB
    out = tmp_path / "out"
    gathered = lms_files.gather([path], out)
    assert [p.name for p in gathered.notebooks] == ["smithjohn_12345.ipynb"]
    assert f"dl.zip: {liar}: refused: its data does not match its header: it inflates past its declared size" in (
        out / "unplaced.txt").read_text()
    assert sorted(p.name for p in (out / ".lms").iterdir()) == ["smithjohn_12345.ipynb"]  # no part left behind
    roster = json.loads((out / "lms.json").read_text())
    assert [s["id"] for s in roster["students"]] == ["12345"]
    assert [(s["id"], s["why"].split(": refused: ")[1][:23]) for s in roster["left_out"]] == [
        ("23456", "its data does not match")]  # the export says why this student is missing


def renamed(path, placeholder, raw):
    """Replace an entry name's bytes in the zip (same length: headers stay valid)."""
    data = path.read_bytes()
    assert len(placeholder) == len(raw) and data.count(placeholder) == 2
    path.write_bytes(data.replace(placeholder, raw))
    return path


def test_names_in_another_encoding_are_placed_with_a_note(tmp_path):
    path = write_zip(tmp_path / "dl.zip", {
        "JXrgen MXller_77_assignsubmission_file_nb.ipynb": NB,  # ASCII: no UTF-8 flag
        "ZZZZ_78_assignsubmission_file_nb.ipynb": NB,
        GOOD: NB})
    renamed(path, b"JXrgen MXller", "Jürgen Müller".encode("cp437"))  # CP437, as Windows zips write
    renamed(path, b"ZZZZ", "Zoë".encode("utf-8"))  # UTF-8 bytes without the flag, as many archivers write
    out = tmp_path / "out"
    gathered = lms_files.gather([path], out)
    students = {s["id"]: s for s in json.loads((out / "lms.json").read_text())["students"]}
    assert {i: (s["name"], s["folder"]) for i, s in students.items()} == {
        "77": ("Jürgen Müller", "Jurgen_Muller_77"), "78": ("Zoë", "Zoe_78"), "12345": ("smithjohn", "smithjohn_12345")}
    notes = [line for line in gathered.lines if line.startswith("note:")]
    assert any("Jürgen Müller_77" in n and "not marked UTF-8: read as CP437" in n for n in notes)
    assert any("_78_" in n and "its bytes are UTF-8: read as UTF-8" in n for n in notes)


def test_a_name_marked_utf8_whose_bytes_are_not_is_placed_and_the_rest_still_are(tmp_path):
    path = write_zip(tmp_path / "dl.zip", {"Jé_88_assignsubmission_file_nb.ipynb": NB, GOOD: NB})
    renamed(path, "Jé".encode(), b"J\xff\xfe")  # zipfile sets the UTF-8 flag for é; \xff\xfe is no UTF-8
    with pytest.raises(UnicodeDecodeError):  # what zipfile alone does with it: the whole archive fails
        zipfile.ZipFile(path)
    out = tmp_path / "out"
    gathered = lms_files.gather([path], out)
    assert sorted(p.name for p in gathered.notebooks) == ["J_88.ipynb", "smithjohn_12345.ipynb"]
    assert (out / ".lms" / "J_88.ipynb").read_bytes() == NB
    assert any("_88_" in line and "marked UTF-8 but its bytes are not: read as CP437" in line
               for line in gathered.lines)
    assert path.read_bytes().count(b"J\xff\xfe") == 2  # the download itself is left as it was


# --- real grading ---------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_canvas_download_is_graded_and_its_grades_go_back_by_id(tmp_path, capsys):
    notebooks.write(notebooks.solved(), tmp_path / "solved.ipynb")
    path = write_zip(tmp_path / "submissions.zip", {
        "smithjohn_late_12345_900001_ResNets.ipynb": (tmp_path / "solved.ipynb").read_bytes(),
        "doejane_23456_900002_ResNets.ipynb": b"not json at all",  # no kernel: unreadable
        "leeann_34567_900003_ResNets.py": b"def identity_block(): pass",
    })
    out = tmp_path / "out"
    assert main(["grade", str(path), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    results = {f: json.loads((out / f / "results.json").read_text())["score"] for f in ("smithjohn_12345",
                                                                                         "doejane_23456")}
    assert results == {"smithjohn_12345": 100, "doejane_23456": 0}
    book, to = tmp_path / "gradebook.csv", tmp_path / "import.csv"
    with open(book, "w", newline="") as f:
        csv.writer(f).writerows([r[:6] for r in GRADEBOOK[:1] + GRADEBOOK[2:6]])
    assert main(["export", str(out), "--canvas", str(book), "--to", str(to)]) == 0
    assert column(read_csv(to), "ResNets (4242)") == {"12345": "10", "23456": "0", "34567": ""}
    assert "missing: Lee, Ann (id 34567)" in capsys.readouterr().err


@pytest.mark.slow
def test_a_moodle_download_in_folders_is_graded_and_its_feedback_goes_back(tmp_path):
    example = notebooks.ROOT / "examples" / "example_submission.ipynb"
    path = write_zip(tmp_path / "moodle.zip", {
        "John Smith_77_assignsubmission_file_/Residual_Networks.ipynb": example.read_bytes()})
    out = tmp_path / "out"
    assert main(["grade", str(path), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    payload = json.loads((out / "John_Smith_77" / "results.json").read_text())
    sheet, to, fz = tmp_path / "worksheet.csv", tmp_path / "import.csv", tmp_path / "feedback.zip"
    with open(sheet, "w", newline="") as f:
        csv.writer(f).writerows(WORKSHEET[:2])
    assert main(["export", str(out), "--moodle", str(sheet), "--to", str(to), "--feedback-zip", str(fz)]) == 0
    rows = read_csv(to)
    assert column(rows, "Grade", key=0) == {"Participant 77": lms_export.points(payload["score"], 100, 10)}
    assert column(rows, "Feedback comments", key=0)["Participant 77"].startswith(f"Score {payload['score']:g}/100.")
    with zipfile.ZipFile(fz) as z:
        assert z.read("John Smith_77_assignsubmission_file_/report.html") == (
            out / "John_Smith_77" / "report.html").read_bytes()
