"""PrairieLearn's external grader, outside the image: the zip's prairielearn/run.sh on a fake /grade.

autograder.zip is built and unpacked as the image has it (/autograder/source; this venv's python
stands in for the one setup.sh installs), a job folder is laid out as PrairieLearn lays out /grade
(student/, data/data.json, tests/, serverFilesCourse/), and run.sh runs with PRAIRIELEARN_GRADE
pointing at it. grader/prairielearn.py's conversion is checked on its own too, and the example
question's info.json against the zip. `make image-test` runs the same entry in a container.
"""

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import notebooks
from grader import prairielearn

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gradescope_build", ROOT / "gradescope" / "build.py")
build = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build)
ENTRYPOINT = "/autograder/source/prairielearn/run.sh"  # where the image has it (the Dockerfile unpacks the zip there)
STUB = notebooks.graded_cell(notebooks.assignment(), "ResNet50").source
NO_RELU = "def identity_block(X, f, filters, stage, block):\n    return X\n"


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("zip") / "autograder.zip"
    build.build(path)
    return path


@pytest.fixture
def job(tmp_path, zip_path):
    """(the /grade folder, the unpacked zip): a job as PrairieLearn lays it out, and the grader as the image has it."""
    source = tmp_path / "autograder" / "source"
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            target = source / info.filename
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
            target.chmod((info.external_attr >> 16) & 0o777)
    grade = tmp_path / "grade"
    for d in ("student", "data", "tests", "serverFilesCourse"):
        (grade / d).mkdir(parents=True)
        (grade / d).chmod(0o755)
    (grade / "data" / "data.json").write_text(json.dumps({"params": {}, "correct_answers": {"secret": 42}}))
    (grade / "data" / "data.json").chmod(0o644)
    return grade, source


def run(grade, source, timeout=600, **env):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(grade.parent), "TMPDIR": str(grade.parent),
           "PRAIRIELEARN_GRADE": str(grade), "AUTOGRADER_PYTHON": sys.executable, **env}
    proc = subprocess.run([str(source / "prairielearn" / "run.sh")], cwd=grade.parent, env=env, capture_output=True,
                          text=True, errors="replace", timeout=timeout)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = grade / "results" / "results.json"
    assert out.is_file(), proc.stdout + proc.stderr
    return json.loads(out.read_text())


def ours(grade):
    return json.loads((grade / "results" / "grader" / "results.json").read_text())


# -- run.sh on real submissions ---------------------------------------------------------------------

@pytest.mark.slow
def test_a_correct_notebook_scores_one_with_a_test_per_check(job):
    grade, source = job
    notebooks.write(notebooks.solved(), grade / "student" / "ResNets.ipynb")
    r = run(grade, source)
    assert r["gradable"] is True and r["score"] == 1.0
    assert len(r["tests"]) == 12 and sum(t["max_points"] for t in r["tests"]) == 100
    assert all(t["points"] == t["max_points"] for t in r["tests"])
    assert {t["name"].split(": ")[1] for t in r["tests"]} == {"names", "shapes", "params", "activations"}
    assert all(t["description"] and t["message"].startswith("All ") for t in r["tests"])
    assert r["message"].startswith("Score: 100 / 100")
    assert ours(grade)["score"] == 100 and (grade / "results" / "grader" / "report.html").is_file()
    # run.sh's options reached the grader: the kernel's memory cap fits PrairieLearn's 2 GiB job
    assert ours(grade)["extra_data"]["isolation"]["caps"]["memory"]["limit"] == 1.5 * 2**30


@pytest.mark.slow
def test_mistakes_in_a_notebook_with_another_name_score_what_our_results_json_says(job):
    grade, source = job
    notebooks.write(notebooks.solved(ResNet50=STUB, identity_block=NO_RELU), grade / "student" / "my answers.ipynb")
    r = run(grade, source)
    mine = ours(grade)
    assert r["gradable"] is True
    assert 0 < r["score"] < 1
    assert r["score"] == pytest.approx(mine["score"] / sum(t["max_score"] for t in mine["tests"]))
    assert [(t["name"], t["points"], t["max_points"]) for t in r["tests"]] == \
        [(t["name"], t["score"], t["max_score"]) for t in mine["tests"]]
    failed = [t for t in r["tests"] if t["points"] < t["max_points"]]
    assert {t["name"].split(":")[0] for t in failed} == {"identity_block", "ResNet50"}
    for t in failed:  # the feedback: how many cases pass, then what was found, as on Gradescope
        theirs = next(x for x in mine["tests"] if x["name"] == t["name"])["output"]
        assert t["message"] + ("\n" + t["output"] if t["output"] else "") == theirs
    assert "identity_block" in r["output"] and "convolutional_block" in r["output"]


def test_no_notebook_is_not_gradable_and_says_what_to_submit(job):
    grade, source = job
    (grade / "student" / "notes.txt").write_text("my notebook is on my laptop")
    (grade / "results").mkdir()
    (grade / "results").chmod(0o777)  # as a careless host might leave it (PrairieLearn's docs: it makes none)
    r = run(grade, source)
    assert r["gradable"] is False and r["score"] == 0 and r["tests"] == []
    assert "no notebook (.ipynb) was submitted. Submit your ResNets.ipynb." in r["format_errors"][0]
    assert r["message"] == r["format_errors"][0]
    if os.geteuid() == 0:  # the question's own files are not for the student's kernel (run as nobody) to read
        hidden = [grade / "data", grade / "data" / "data.json", grade / "tests", grade / "serverFilesCourse"]
        assert [p for p in hidden if p.stat().st_mode & 0o007] == []
        assert (grade / "student" / "notes.txt").stat().st_mode & 0o004  # the student's own stay readable
        assert not (grade / "results").stat().st_mode & 0o022  # nor may it write where the results go


@pytest.mark.parametrize("files, graded", [
    (["answers.ipynb", "notes.txt"], "answers.ipynb"),
    (["ResNets.ipynb", "scratch.ipynb"], "ResNets.ipynb"),
    (["a.ipynb", "b.ipynb"], None),
])
def test_the_one_notebook_or_the_assignments_is_graded(job, files, graded):
    grade, source = job
    for name in files:  # none of them a notebook: the grader's message names the one it read
        (grade / "student" / name).write_text("this is not a notebook {")
    r = run(grade, source)
    assert r["gradable"] is False and r["tests"] == []
    if graded:
        assert r["format_errors"][0].startswith(f"{graded} is not a notebook: it is not JSON")
    else:
        assert r["format_errors"][0].startswith("2 notebooks were submitted and not exactly one is named ResNets.ipynb")


def test_a_grader_that_fails_is_not_gradable_and_says_so(job):
    grade, source = job
    (source / "grader" / "__main__.py").write_text("import sys\nprint('grader: broken on purpose')\nsys.exit(3)\n")
    notebooks.write(notebooks.solved(), grade / "student" / "ResNets.ipynb")
    r = run(grade, source)
    assert r["gradable"] is False and r["score"] == 0
    assert r["format_errors"][0].startswith("the grader stopped (exit status 3) before writing a result.")
    assert "tell the course staff" in r["message"]
    assert "grader: broken on purpose" in r["output"]  # the log's tail, for the staff


def test_an_interpreter_that_cannot_run_still_leaves_a_result(job):
    grade, source = job
    (grade / "results").mkdir()
    (grade / "results" / "results.json").write_text('{"score": 1.0}')  # stale, from an earlier job: must not survive
    notebooks.write(notebooks.solved(), grade / "student" / "ResNets.ipynb")
    r = run(grade, source, AUTOGRADER_PYTHON="/bin/false")
    assert r["gradable"] is False and r["score"] == 0 and r["tests"] == []
    assert "the grader could not report its result" in r["message"]
    assert "the grader stopped (exit status 1)" in r["output"]  # run_autograder's own result, quoted


# -- the question's configuration and the image -------------------------------------------------------

def test_the_example_question_runs_the_zips_entrypoint_within_its_timeout(zip_path):
    info = json.loads((ROOT / "prairielearn" / "example_question" / "info.json").read_text())
    options = info["externalGradingOptions"]
    assert info["gradingMethod"] == "External" and options["enabled"] is True and options["image"]
    assert options["entrypoint"] == ENTRYPOINT
    with zipfile.ZipFile(zip_path) as zf:  # in the zip, executable; the Dockerfile unpacks it without modes,
        mode = zf.getinfo(ENTRYPOINT.removeprefix("/autograder/source/")).external_attr >> 16
    assert mode & 0o111
    setup = (ROOT / "gradescope" / "setup.sh").read_text()  # so setup.sh makes it executable in the image
    assert 'chmod +x "$SOURCE/run_autograder" "$SOURCE/prairielearn/run.sh"' in setup
    run_sh = (ROOT / "prairielearn" / "run.sh").read_text()
    backstop = int(run_sh.split('AUTOGRADER_TIMEOUT="${AUTOGRADER_TIMEOUT:-')[1].split("}")[0])
    grader_limit = float(run_sh.split("--submission-timeout ")[1].split('"')[0])
    assert grader_limit < backstop + 15 < options["timeout"] <= 600  # the kill after the backstop: 15 s
    assert "<pl-file-upload" in (ROOT / "prairielearn" / "example_question" / "question.html").read_text()


# -- the conversion alone ------------------------------------------------------------------------------

def gradescope_test(function, aspect, score, max_score, output="", visibility="visible"):
    return {"name": f"{function}: {aspect}", "score": score, "max_score": max_score, "output": output,
            "visibility": visibility, "extra_data": {"function": function, "aspect": aspect}}


def test_convert_maps_each_check_to_a_test_and_the_score_to_a_fraction():
    results = {"score": 72.5, "output": "Score: 72.5 / 80", "tests": [
        gradescope_test("identity_block", "names", 10, 10, "All 2 cases pass."),
        gradescope_test("identity_block", "activations", 2.5, 10,
                        "1 of 4 cases pass.\n[f=2] res2a_branch2c: outputs differ"),
        gradescope_test("ResNet50", "shapes", 60, 60, "All 2 cases pass.")], "extra_data": {"error": "", "limits": []}}
    r = prairielearn.convert(results)
    assert r["gradable"] is True and r["score"] == 0.90625 and r["message"] == "Score: 72.5 / 80"
    assert r["tests"][1] == {"name": "identity_block: activations",
                             "description": prairielearn.DESCRIPTIONS["activations"],
                             "points": 2.5, "max_points": 10, "message": "1 of 4 cases pass.",
                             "output": "[f=2] res2a_branch2c: outputs differ"}
    assert r["tests"][0]["output"] == ""
    lines = r["output"].splitlines()
    assert lines[0].split() == ["function", "names", "activations", "shapes", "total"]
    assert lines[1].split() == ["identity_block", "10/10", "2.5/10", "-", "12.5/20"]
    assert lines[2].split() == ["ResNet50", "-", "-", "60/60", "60/60"]


def test_hidden_checks_count_in_the_score_but_are_not_listed():
    results = {"score": 50, "output": "Score on the visible checks: 50 / 50", "tests": [
        gradescope_test("identity_block", "names", 50, 50),
        gradescope_test("ResNet50", "activations", 0, 50, "0 of 2 cases pass.", visibility="after_due_date")]}
    r = prairielearn.convert(results)
    assert r["score"] == 0.5 and [t["name"] for t in r["tests"]] == ["identity_block: names"]
    assert "ResNet50" not in r["output"]


@pytest.mark.parametrize("kind", ["unreadable", "not graded"])
def test_a_submission_that_was_not_graded_is_not_gradable(kind):
    why = "ResNets.ipynb is not a notebook: it is not JSON"
    results = {"score": 0, "output": f"Score: 0 / 100\nGrading failed: {why}",
               "tests": [gradescope_test("identity_block", "names", 0, 10, why)],
               "extra_data": {"error": why, "error_kind": kind, "limits": []}}
    r = prairielearn.convert(results)
    assert r == {"gradable": False, "score": 0.0, "message": why, "format_errors": [why], "output": "", "tests": []}


@pytest.mark.parametrize("results, why", [
    ([1, 2], "not a JSON object"),
    ({"score": 10, "tests": []}, "lists no tests"),
    ({"score": "10", "tests": [gradescope_test("ResNet50", "names", 10, 10)]}, "score is not a number: '10'"),
    ({"score": 10, "tests": [{"score": 10, "max_score": 10}]}, "test 0 has no name"),
    ({"score": 10, "tests": [gradescope_test("ResNet50", "names", None, 10)]},
     "the score of ResNet50: names is not a number"),
    ({"score": float("nan"), "tests": [gradescope_test("ResNet50", "names", 10, 10)]}, "score is not a number: nan"),
])
def test_malformed_results_are_not_gradable_with_a_clear_message(results, why):
    r = prairielearn.convert(results)
    assert r["gradable"] is False and r["score"] == 0.0 and r["tests"] == []
    assert why in r["message"] and "tell the course staff" in r["message"]


@pytest.mark.parametrize("char", ["x", "\u00e9", "\x01"])  # \u00e9 and \x01 take six bytes each in the file
def test_long_feedback_is_cut_to_stay_under_prairielearns_1_mb(char):
    huge = char * 2_000_000
    tests = [gradescope_test("identity_block", a, 0, 10, "0 of 2 cases pass.\n" + huge)
             for a in ("names", "shapes", "params", "activations")] * 3
    results = {"score": 0, "output": huge, "tests": tests}
    r = prairielearn.convert(results)
    assert len(json.dumps(r)) < 1_000_000
    assert r["tests"][0]["output"].endswith("(cut: too long to show here)")
    assert r["tests"][0]["message"] == "0 of 2 cases pass."
    assert len(r["tests"][0]["output"]) > 1000  # still something to read


def test_main_writes_a_result_for_a_missing_or_broken_file_and_says_why(tmp_path, capsys):
    out = tmp_path / "results" / "results.json"
    assert prairielearn.main([str(tmp_path / "none.json"), str(out)]) == 0
    r = json.loads(out.read_text())
    assert r["gradable"] is False and "the grader wrote no results.json" in r["message"]
    (tmp_path / "bad.json").write_text("{not json")
    assert prairielearn.main([str(tmp_path / "bad.json"), str(out)]) == 0
    assert "the grader's results.json cannot be read (JSONDecodeError" in json.loads(out.read_text())["message"]
    (tmp_path / "file").write_text("")
    assert prairielearn.main([str(tmp_path / "bad.json"), str(tmp_path / "file" / "results.json")]) == 1
    assert "prairielearn: cannot write" in capsys.readouterr().err
    assert not [p for p in tmp_path.rglob("*.tmp")]
