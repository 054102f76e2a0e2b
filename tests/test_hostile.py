"""Untrusted submissions: every one comes back with sound results, in bounded time, costing only
the function it breaks, leaving no process behind and staying under its memory cap.

Cases from tests/hostile.py are grouped one per graded function into a notebook,
so each kernel run exercises up to three of them.
"""

import json
import socket
import tempfile
import threading
import time

import psutil
import pytest

import notebooks
from grader import zygote
from grader.batch import Batch
from grader.cli import main
from grader.grade import grade_notebook
from grader.sandbox import GiB, Limits, namespaces_available, resolve
from grader.spec import FUNCTIONS
from hostile import CASES

pytestmark = pytest.mark.slow
LIMITS = Limits(function_timeout=30, submission_timeout=240, definition_timeout=20)
BY_ID = {c.id: c for c in CASES}
GROUPS = (
    ("os-exit", "sys-exit", "write-results-files"),
    ("sigint-ignored-endless-loop", "endless-recursion"),
    ("allocate-16-gib", "orphan-processes", "sleep-an-hour"),
    ("input-call", "print-64-mib"),
    ("network", "environment-scrubbed"),
    ("monkeypatch-numpy-keras", "import-solution"),
    ("tamper-grader-probe",),
)
# Upper bounds, in seconds, generous for a loaded 2-core machine: a kernel start per crash, a timeout per hang.
BUDGET = {"crash": 45, "hang": LIMITS.function_timeout + 45, "base": 90}
HANGS = {"sigint-ignored-endless-loop", "sleep-an-hour"}
CRASHES = {"os-exit"}
HARDENED_ALONE = "namespaces" if namespaces_available() else "none"


class Watch:
    """Samples the memory of every process under this one while grading runs."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for p in me.children(recursive=True):
                try:
                    total = max(total, p.memory_info().rss)
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.05)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def stray_processes():
    """This session's kernels, zygotes and kernels forked from them (their folders are in its TMPDIR, see
    conftest), and the cases' sleeps."""
    found, session_tmp = [], tempfile.gettempdir()
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if cmd.startswith("sleep 424") or (("ipykernel_launcher" in cmd or zygote.MARK in cmd) and session_tmp in cmd):
            found.append(cmd)
    return found


@pytest.fixture
def listener():
    """A server on loopback that a sandboxed kernel must not reach."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(5)
    srv.settimeout(0.1)
    yield srv
    srv.close()


def _accepted(srv):
    try:
        srv.accept()[0].close()
        return True
    except OSError:
        return False


@pytest.mark.parametrize("group", GROUPS, ids=["+".join(g) for g in GROUPS])
def test_hostile_group(group, tmp_path, listener, monkeypatch, expected_outputs):
    monkeypatch.setenv("GRADER_TEST_SECRET", "hunter2")
    out = tmp_path / "out"
    port = listener.getsockname()[1]
    sources = {BY_ID[c].function: BY_ID[c].source().replace("PORT", str(port)).replace("OUT_DIR", str(out))
               for c in group}
    path = notebooks.write(notebooks.solved(**sources), tmp_path / "hostile.ipynb")

    start = time.monotonic()
    with Watch() as watch:
        assert main(["grade", str(path), "--out", str(out), "--function-timeout", str(LIMITS.function_timeout),
                     "--submission-timeout", str(LIMITS.submission_timeout)]) == 0
    seconds = time.monotonic() - start

    results = json.loads((out / "results.json").read_text())
    scores = {f: sum(t["score"] for t in results["tests"] if t["extra_data"]["function"] == f) for f in FUNCTIONS}
    full = {f: sum(t["max_score"] for t in results["tests"] if t["extra_data"]["function"] == f) for f in FUNCTIONS}
    broken = {BY_ID[c].function for c in group if BY_ID[c].zero}
    for f in FUNCTIONS:
        assert scores[f] == (0 if f in broken else full[f]), (f, results["tests"])
    assert results["score"] == sum(full[f] for f in FUNCTIONS if f not in broken)

    budget = BUDGET["base"] + sum(BUDGET["hang"] if c in HANGS else BUDGET["crash"] if c in CRASHES else 0 for c in group)
    assert seconds < budget
    assert watch.peak < LIMITS.memory + 1 * GiB
    assert stray_processes() == []
    assert len(json.dumps(results)) < 100_000  # 64 MiB of printing did not reach the results
    if namespaces_available():
        assert not _accepted(listener)


def test_broken_files_get_a_message_and_a_zero(tmp_path):
    cases = {"empty": b"", "not-json": b"{{{", "renamed-py": b"import keras\n\ndef identity_block(X):\n    pass\n",
             "not-utf8": b"\xff\xfe\xfa", "no-cells": b'{"metadata": {}}'}
    for name, data in cases.items():
        (tmp_path / f"{name}.ipynb").write_bytes(data)
    out = tmp_path / "out"
    start = time.monotonic()
    assert main(["grade", *[str(tmp_path / f"{n}.ipynb") for n in cases], "--out", str(out), "--no-progress"]) == 0
    assert time.monotonic() - start < 60  # no kernel is needed to reject them
    assert stray_processes() == []
    for name in cases:
        r = json.loads((out / name / "results.json").read_text())
        assert r["score"] == 0 and "Grading failed" in r["output"] and len(r["tests"]) == 12


def test_deleted_cell_and_double_definition(tmp_path, expected_outputs):
    """A deleted graded cell costs that function; a function defined twice is graded on its last definition."""
    nb = notebooks.solved()
    nb.cells.remove(notebooks.graded_cell(nb, "identity_block"))
    cell = notebooks.graded_cell(nb, "convolutional_block")
    cell.source = "def convolutional_block(X, f, filters, stage, block, s=2):\n    return X\n\n" + cell.source
    nb.metadata["kernelspec"] = {"name": "julia-1.9", "display_name": "Julia", "language": "julia"}
    start = time.monotonic()
    with Watch() as watch:
        r = grade_notebook(notebooks.write(nb, tmp_path / "nb.ipynb"), expected_outputs, resolve(LIMITS))
    assert time.monotonic() - start < BUDGET["base"]
    assert watch.peak < LIMITS.memory + 1 * GiB
    assert stray_processes() == []
    by = {f: sum(c.score for c in r.checks if c.function == f) for f in FUNCTIONS}
    assert by == {"identity_block": 0, "convolutional_block": 35, "ResNet50": 35}
    assert "identity_block is not defined" in "\n".join(c.note for c in r.checks)


def test_batch_survives_bad_submissions_matches_sequential_and_resumes(tmp_path, capsys):
    folder = tmp_path / "class"
    folder.mkdir()
    notebooks.write(notebooks.solved(), folder / "alice.ipynb")
    notebooks.write(notebooks.solved(identity_block=BY_ID["os-exit"].source()), folder / "bob.ipynb")
    (folder / "carol.ipynb").write_text("not a notebook")
    out = tmp_path / "out"
    graded = []
    batch = Batch(out, LIMITS, workers=2)
    start = time.monotonic()
    with Watch() as watch:
        first = batch.run(sorted(folder.glob("*.ipynb")), on_result=lambda job, r: graded.append(job.path.name))
    assert time.monotonic() - start < 2 * BUDGET["base"] + BUDGET["crash"]
    assert watch.peak < LIMITS.memory + 1 * GiB
    assert stray_processes() == []
    assert sorted(graded) == ["alice.ipynb", "bob.ipynb", "carol.ipynb"]
    assert [first[p]["score"] for p in sorted(first)] == [100, 70, 0]
    book = (out / "gradebook.csv").read_text().splitlines()
    assert book[0].startswith("submission,score,max_score,identity_block: names")
    assert [line.split(",")[0] for line in book[1:]] == ["alice", "bob", "carol"]
    assert "grading: 100%" in capsys.readouterr().err  # the progress bar

    sequential = Batch(tmp_path / "sequential", LIMITS, workers=1, progress=False).run(sorted(folder.glob("*.ipynb")))
    timeless = lambda r: {k: v for k, v in r.items() if k != "execution_time"}  # noqa: E731
    assert {p: timeless(r) for p, r in sequential.items()} == {p: timeless(r) for p, r in first.items()}

    regraded = []
    again = Batch(out, LIMITS, workers=2).run(sorted(folder.glob("*.ipynb")), on_result=lambda j, r: regraded.append(j))
    assert regraded == [] and again == first
    notebooks.write(notebooks.assignment(), folder / "alice.ipynb")  # alice resubmits: only she is graded again
    Batch(out, LIMITS, workers=1).run(sorted(folder.glob("*.ipynb")), on_result=lambda j, r: regraded.append(j.path.name))
    assert regraded == ["alice.ipynb"]
    assert not list(out.rglob(".*.tmp"))  # atomic writes leave no temporary files


def _can_run_as(user):
    """Whether a kernel's own command line, as `user`, can start this interpreter here."""
    import os
    import pwd

    from grader import sandbox

    if os.geteuid() != 0:
        return False
    try:
        pwd.getpwnam(user)
    except KeyError:
        return False
    return sandbox.can_start(Limits(run_as=user, isolation=HARDENED_ALONE))


@pytest.mark.skipif(not _can_run_as("nobody"), reason="needs root, a 'nobody' user and an interpreter it can run")
def test_hardened_mode_runs_the_kernel_as_an_unprivileged_user(tmp_path, expected_outputs):
    secret = tmp_path / "secret.txt"
    secret.write_text("the answers")
    secret.chmod(0o600)
    body = (f"import os\ntry:\n    open({str(secret)!r}).read()\n    raise RuntimeError('read a root-only file')\n"
            "except PermissionError:\n    pass\nassert os.geteuid() != 0, 'running as root'")
    src = notebooks.solution_sources()["identity_block"].replace(
        "    conv_name, bn_name = _names(stage, block)\n",
        "".join("    " + line + "\n" for line in body.splitlines()) + "    conv_name, bn_name = _names(stage, block)\n", 1)
    path = notebooks.write(notebooks.solved(identity_block=src), tmp_path / "nb.ipynb")
    # Hardened mode on its own: without bubblewrap, which would hide the file rather than refuse it.
    r = grade_notebook(path, expected_outputs, Limits(run_as="nobody", function_timeout=60, isolation=HARDENED_ALONE))
    assert r.score == 100, [m for c in r.checks for m in c.messages]
    assert stray_processes() == []


def test_hardened_mode_refuses_when_the_solution_is_readable(tmp_path, capsys):
    import os

    if os.geteuid() != 0:
        pytest.skip("hardened mode is for graders running as root")
    readable = tmp_path / "expected"
    readable.mkdir()
    (readable / "x.json").write_text("{}")
    (readable / "x.json").chmod(0o644)
    assert main(["grade", str(tmp_path / "nb.ipynb"), "--out", str(tmp_path / "out"), "--run-as", "nobody",
                 "--expected", str(readable)]) == 2
    assert "readable by other users" in capsys.readouterr().err
