"""The grader works wherever it is put: any TMPDIR (however long, with spaces or accents), a
private (0700) folder, a submission named `Résumé (1).ipynb` in `dossier de l'élève/`; where
something really cannot work, one line and a results.json that says why.

A Unix socket's path holds at most 107 bytes and each kernel's IPC sockets live in its folder,
so grader.leftovers puts that folder into TMPDIR only while the sockets fit there.
"""

import ast
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from grader import leftovers

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "example_submission.ipynb"


def long_folder(base, length, part="dossier très long, avec des espaces"):
    """A folder inside `base` whose path is at least `length` bytes long."""
    path = Path(base)
    while len(os.fsencode(str(path))) < length:
        path = path / part
    path.mkdir(parents=True)
    return path


def test_a_short_tmpdir_is_used_and_a_too_long_one_is_not(short_tmp, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(short_tmp))
    assert leftovers.new_folder().parent == short_tmp

    deep = long_folder(short_tmp, 120)
    monkeypatch.setattr("tempfile.tempdir", str(deep))
    assert not leftovers.fits(deep)
    folder = leftovers.new_folder()
    try:
        assert folder.parent != deep and str(folder.parent) in leftovers.SHORT_BASES
        longest = folder / "sockets" / "ipc-65535"
        assert len(os.fsencode(str(longest))) <= leftovers.SOCKET_PATH_MAX
    finally:
        folder.rmdir()


def test_the_length_rule_is_the_socket_limit_in_bytes(short_tmp):
    """Where fits() says yes, the longest socket path binds; a path one byte over the limit does not."""
    import socket

    base = short_tmp
    while leftovers.fits(base / "x"):
        base = base / "x"
    assert leftovers.fits(base)
    name = leftovers.PREFIX + "4194303." + "z" * 8 + "-" + "y" * 8  # the longest name new_folder makes
    sockets = base / name / "sockets"
    sockets.mkdir(parents=True)
    path = str(sockets / "ipc-65535")
    assert len(os.fsencode(path)) <= leftovers.SOCKET_PATH_MAX
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(path)
    too_long = path + "0" * (leftovers.SOCKET_PATH_MAX + 1 - len(os.fsencode(path)))
    with socket.socket(socket.AF_UNIX) as s, pytest.raises(OSError):
        s.bind(too_long)
    # accents count in bytes: "é" is two of them
    assert not leftovers.fits(Path("/tmp") / ("é" * 30)) and leftovers.fits(Path("/tmp") / ("e" * 30))


def test_a_private_tmpdir_is_not_used_for_another_users_kernel(short_tmp, monkeypatch):
    private = short_tmp / "private"
    private.mkdir(mode=0o700)
    monkeypatch.setattr("tempfile.tempdir", str(private))
    assert leftovers.new_folder().parent == private  # the grader's own kernels may use it
    other = leftovers.new_folder(for_other_user=True)  # hardened mode's user could not reach it
    try:
        assert other.parent != private and str(other.parent) in leftovers.SHORT_BASES
    finally:
        other.rmdir()


def test_no_room_anywhere_says_why(short_tmp, monkeypatch):
    deep = long_folder(short_tmp, 120)
    monkeypatch.setattr("tempfile.tempdir", str(deep))
    monkeypatch.setattr(leftovers, "SHORT_BASES", (str(short_tmp / "missing"), str(deep)))
    with pytest.raises(leftovers.NoRoom, match="too long for a Unix socket.*set TMPDIR"):
        leftovers.new_folder()


def test_a_dead_runs_folder_outside_tmpdir_is_removed_too(short_tmp):
    """A run with a long TMPDIR left its folders in a short base: the next run, with any TMPDIR, removes them."""
    deep = long_folder(short_tmp, 120)
    dead = subprocess.run([sys.executable, "-c", "from grader import leftovers; print(leftovers.new_folder())"],
                          cwd=ROOT, env=dict(os.environ, TMPDIR=str(deep)), capture_output=True, text=True, check=True)
    folder = Path(dead.stdout.strip())
    assert folder.is_dir() and not folder.is_relative_to(deep)
    mine = leftovers.new_folder()
    try:
        leftovers.remove_stale()
        assert not folder.exists() and mine.is_dir()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        mine.rmdir()


def test_without_room_a_grade_writes_a_result_that_says_why(short_tmp, monkeypatch, capsys):
    from grader.cli import main

    deep = long_folder(short_tmp, 120)
    monkeypatch.setattr("tempfile.tempdir", str(deep))
    monkeypatch.setattr(leftovers, "SHORT_BASES", ())
    out = short_tmp / "out"
    assert main(["grade", str(EXAMPLE), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["score"] == 0 and "too long for a Unix socket" in results["output"]
    assert (out / "report.html").is_file()
    err = capsys.readouterr().err
    assert "Traceback" not in err and "too long for a Unix socket" in err

    batch = short_tmp / "batch"
    two = short_tmp / "class"
    two.mkdir()
    for name in ("a.ipynb", "b.ipynb"):
        shutil.copy(EXAMPLE, two / name)
    assert main(["grade", str(two), "--out", str(batch), "--no-progress"]) == 0
    for name in ("a", "b"):
        results = json.loads((batch / name / "results.json").read_text())
        assert results["score"] == 0 and "too long for a Unix socket" in results["output"]


@pytest.mark.slow
def test_a_long_accented_tmpdir_and_an_accented_submission_grade_as_usual(short_tmp):
    """TMPDIR of over 107 bytes with spaces and accents, `dossier de l'élève/Résumé (1).ipynb`, an
    accented results folder: the example scores as it does anywhere (tests/test_grade_e2e.py)."""
    tmpdir = long_folder(short_tmp, 130, "répertoire temporaire à rallonge")
    folder = short_tmp / "dossier de l'élève"
    folder.mkdir()
    notebook = folder / "Résumé (1).ipynb"
    shutil.copy(EXAMPLE, notebook)
    out = short_tmp / "résultats de l'élève"
    env = dict(os.environ, TMPDIR=str(tmpdir), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-m", "grader", "grade", str(notebook), "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["score"] == 85, results["output"][-2000:]
    lost = {(t["extra_data"]["function"], t["extra_data"]["aspect"]) for t in results["tests"]
            if t["score"] < t["max_score"]}
    assert lost == {("identity_block", "activations"), ("convolutional_block", "names")}
    assert (out / "report.html").is_file()
    assert not [p for p in tmpdir.rglob("*")], "the grader left something in TMPDIR"


def _third_party_imports():
    """Top-level modules that the grader, the solution and the SIGNS loader import, outside the
    standard library and the project."""
    names = set()
    for package in ("grader", "solution", "signs"):
        for path in (ROOT / package).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in ("grader", "solution", "signs")}


def _declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {d.split("==")[0].split(">")[0].split("<")[0].strip().lower().replace("_", "-")
            for d in project["dependencies"]}


def test_every_module_the_grader_imports_is_declared():
    """Each import is provided by a distribution pyproject.toml names, not one that only arrives
    through another package (psutil came with ipykernel)."""
    providers = importlib.metadata.packages_distributions()
    undeclared = {}
    for module in sorted(_third_party_imports()):
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [module])}
        if not dists & _declared():
            undeclared[module] = sorted(dists)
    assert undeclared == {}


def test_the_declaration_check_sees_a_missing_dependency(monkeypatch):
    """The check above fails when psutil is not declared."""
    declared = _declared() - {"psutil"}
    monkeypatch.setitem(globals(), "_declared", lambda: declared)
    with pytest.raises(AssertionError, match="psutil"):
        test_every_module_the_grader_imports_is_declared()
