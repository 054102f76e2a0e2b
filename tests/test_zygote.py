"""Kernels forked from a worker's zygote (grader.zygote): as isolated from each other as kernels
started on their own, with the same results, and graded still where the zygote fails."""

import json
import os
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

import notebooks
from grader import zygote
from grader.grade import grade_notebook
from grader.kernel import Kernel
from grader.pool import WarmKernels
from grader.sandbox import Limits, resolve
from hostile import Hostile

pytestmark = pytest.mark.slow
ROOT = notebooks.ROOT

# The first submission leaves what it can for the next: files in every writable place, a daemon
# outside its kernel's process tree, a file in its socket folder. Harmless: it scores in full.
PLANT = """\
from ipykernel.connect import get_connection_file
_own = os.path.dirname(get_connection_file())
for _place in ('/tmp', '.', '/dev/shm', _own):
    open(os.path.join(_place, 'planted-by-alice'), 'w').write('x')
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp('sleep', ['sleep', '4243'])
    os._exit(0)
os.wait()
"""
# The next submission fails identity_block if it sees any of it, or anything of another kernel's or
# of the zygote's, or could change what it sees.
LOOK = """\
import ctypes
from ipykernel.connect import get_connection_file
_own = os.path.dirname(get_connection_file())
_seen = [p for p in ('/tmp', '.', '/dev/shm', _own) if os.path.exists(os.path.join(p, 'planted-by-alice'))]
_seen += [f'process {p}' for p in os.listdir('/proc') if p.isdigit()
          and b'4243' in open(f'/proc/{p}/cmdline', 'rb').read()]
try:  # in a kernel's own sandbox, a veil it owns; else the zygote's folder, perhaps not its to list
    _seen += [f'folder {n}' for n in os.listdir(os.path.dirname(_own)) if n not in (os.path.basename(_own), 'work')]
except PermissionError:
    pass
_caps = [l.split()[1] for l in open('/proc/self/status') if l.startswith(('CapEff', 'CapBnd', 'CapPrm'))]
_seen += [f'capabilities {c}' for c in _caps if int(c, 16)]
if ctypes.CDLL(None, use_errno=True).umount2(os.path.dirname(_own).encode(), 2) == 0:
    _seen.append('could unmount the veil')
if _seen:
    raise RuntimeError('saw what another submission left: ' + ', '.join(_seen))
"""


def _bubblewrap():
    resolved = resolve(Limits(isolation="bubblewrap", function_timeout=60, submission_timeout=300))
    if resolved is None:
        pytest.skip("bubblewrap is not usable here (`make bwrap`, and unprivileged user namespaces)")
    return resolved


@pytest.fixture(scope="module")
def limits():
    resolved = _bubblewrap()
    if not zygote.enabled(resolved):
        pytest.skip("kernels start on their own here: bubblewrap would run as root itself (a checkout `nobody` "
                    "cannot read, graded by root without --run-as); test_a_kernel_starts_on_its_own_where_the_zygote_cannot covers that case")
    return resolved


@pytest.fixture(scope="module")
def any_bubblewrap():
    return _bubblewrap()


def _broken_server(tmp_path, monkeypatch, *edits):
    """The zygote's server with each (text, replacement) of `edits` made, each text shown to be there."""
    source = zygote.SERVER.read_text()
    for text, replacement in edits:
        assert text in source, text
        source = source.replace(text, replacement, 1)
    broken = tmp_path / "zygote_server.py"
    broken.write_text(source)
    monkeypatch.setattr(zygote, "SERVER", broken)


def _write(tmp_path, name, body):
    source = Hostile(name, "identity_block", body, zero=False).source()
    return notebooks.write(notebooks.solved(identity_block=source), tmp_path / f"{name}.ipynb")


def _identity_score(result):
    return sum(c.score for c in result.checks if c.function == "identity_block")


def _grade_in_turn(tmp_path, limits, expected):
    alice, bob = _write(tmp_path, "alice", PLANT), _write(tmp_path, "bob", LOOK)
    with WarmKernels(limits) as pool:
        results = [grade_notebook(p, expected, limits, pool.take) for p in (alice, bob)]
        forked = pool.zygote is not None
    return results, forked


def _full(expected_result):
    return sum(c.max_score for c in expected_result.checks if c.function == "identity_block")


def _zygote_processes():
    """This session's zygotes and their forks (their folders are in its TMPDIR, see conftest)."""
    mine = tempfile.gettempdir()
    return [p for p in psutil.process_iter(["cmdline"])
            if zygote.MARK in " ".join(p.info["cmdline"] or []) and mine in " ".join(p.info["cmdline"] or [])]


def test_kernels_forked_from_one_zygote_share_nothing(tmp_path, limits, expected_outputs):
    (alice, bob), forked = _grade_in_turn(tmp_path, limits, expected_outputs)
    assert forked
    assert _identity_score(alice) == _full(alice), alice.checks
    assert _identity_score(bob) == _full(bob), [c.note for c in bob.checks if c.function == "identity_block"]
    assert _zygote_processes() == []  # closing the pool left no zygote, kernel or daemon
    assert not [p for p in psutil.process_iter(["cmdline"]) if (p.info["cmdline"] or [])[:2] == ["sleep", "4243"]]


def test_the_check_sees_a_zygote_whose_kernels_share_its_files(tmp_path, limits, expected_outputs, monkeypatch):
    """The test above fails when a fork keeps the zygote's /tmp, working folder and socket folder."""
    _broken_server(tmp_path, monkeypatch, ("        own_files(", "        (lambda *a: None)("))
    (alice, bob), forked = _grade_in_turn(tmp_path, limits, expected_outputs)
    assert forked and _identity_score(alice) == _full(alice)
    text = repr([c for c in bob.checks if c.function == "identity_block"])  # the error, in each case
    assert _identity_score(bob) == 0 and "saw what another submission left" in text, text
    for leak in ("/tmp", "/dev/shm"):
        assert leak in text, (leak, text)


BROKEN = {
    "dies at once": lambda source: "raise SystemExit(3)\n",
    "forks without a sandbox": lambda source: source.replace("    drop_privileges()\n",
                                                             "    raise OSError('no sandbox for this fork')\n"),
}


@pytest.mark.parametrize("broken", BROKEN, ids=list(BROKEN))
def test_a_kernel_starts_on_its_own_where_the_zygote_cannot(broken, tmp_path, any_bubblewrap, expected_outputs,
                                                            capfd):
    """Never a lost grade: where a zygote cannot give a fork its own sandbox (also bubblewrap run by root
    itself, where Linux refuses the fork its own /proc), the kernel starts the usual way."""
    source = BROKEN[broken](zygote.SERVER.read_text())
    assert source != zygote.SERVER.read_text()
    path = notebooks.write(notebooks.solved(), tmp_path / "solved.ipynb")
    z = zygote.Zygote(any_bubblewrap, source=source)
    try:
        result = grade_notebook(path, expected_outputs, any_bubblewrap, lambda: Kernel(any_bubblewrap, zygote=z))
    finally:
        z.close()
    assert result.score == 100, [c.note for c in result.checks if c.score < c.max_score]
    assert "starting it on its own" in capfd.readouterr().err


def test_a_dead_zygote_is_replaced(tmp_path, limits, expected_outputs):
    path = notebooks.write(notebooks.solved(), tmp_path / "solved.ipynb")
    with WarmKernels(limits, ahead=0) as pool:
        pool.new().close()
        first = pool.zygote
        first.proc.kill()
        first.proc.wait()
        result = grade_notebook(path, expected_outputs, limits, pool.take)
        assert pool.zygote is not first and pool.zygote.alive()
    assert result.score == 100


def test_results_are_the_same_with_and_without_the_zygote(tmp_path):
    import corpus

    mistake = next(m for m in corpus.MISTAKES if m.function == "convolutional_block")
    folder = tmp_path / "class"
    folder.mkdir()
    notebooks.write(notebooks.solved(), folder / "correct.ipynb")
    notebooks.write(notebooks.solved(**{mistake.function: mistake.source()}), folder / "mistaken.ipynb")
    outs = {}
    for setting in ("1", "0"):
        outs[setting] = tmp_path / f"out-{setting}"
        env = dict(os.environ, GRADER_ZYGOTE=setting, TF_CPP_MIN_LOG_LEVEL="3")
        subprocess.run([sys.executable, "-m", "grader", "grade", str(folder), "--out", str(outs[setting]),
                        "--no-progress", "--workers", "1"], cwd=ROOT, env=env, check=True, capture_output=True)
    for name in ("correct", "mistaken"):
        a, b = (json.loads((outs[s] / name / "results.json").read_text()) for s in ("1", "0"))
        for r in (a, b):
            r.pop("execution_time", None)
        assert a == b, name
    scores = {n: json.loads((outs["1"] / n / "results.json").read_text())["score"] for n in ("correct", "mistaken")}
    assert scores["correct"] == 100 and scores["mistaken"] < 100


# A kernel that does all it can to outlive its grade: a child stopped, one renamed like its keeper, a
# daemon in a session of its own (double fork), a spinner; the kernel itself leaves its group.
# TOKEN marks each, in its command line or its name.
LINGER = r"""
import ctypes, os, signal, subprocess, sys, time
def _child(body):
    if os.fork() == 0:
        try:
            body()
        finally:
            os._exit(0)
def _named(name):
    ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
_child(lambda: (_named("stop-TOKEN"), os.kill(os.getpid(), signal.SIGSTOP)))
_SLEEP = "import ctypes, sys, time; ctypes.CDLL(None).prctl(15, sys.argv[1].encode(), 0, 0, 0); time.sleep(3600)"
_child(lambda: os.execv(sys.executable, [sys.executable, "-c", _SLEEP, "rg-kernel-k1", "TOKEN-renamed"]))
def _daemon():
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, "-c", _SLEEP, "daemon", "TOKEN-daemon"])
_child(_daemon)
subprocess.Popen([sys.executable, "-c", "while True: pass", "TOKEN-spin"], start_new_session=True)
os.setsid() if os.getpid() != os.getpgid(0) else None
time.sleep(1)
print("lingering")
"""


def _run_cell(kernel, code):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(nb, km=kernel.km, timeout=60, startup_timeout=60, allow_errors=True).execute()
    return "".join(o.get("text", "") for o in nb.cells[0].outputs if o.output_type == "stream")


def _lingering(token):
    return [p for p in psutil.process_iter(["cmdline", "name"])
            if token in " ".join(p.info["cmdline"] or []) or p.info["name"] == f"stop-{token}"[:15]]


@pytest.mark.parametrize("keeper", ["keeps its kernel", "does nothing when its launcher goes"])
def test_the_grader_ends_everything_a_kernel_started_itself(keeper, limits, tmp_path, monkeypatch):
    """Closing a kernel kills all it started, at once, also where the zygote's keeper would not."""
    if keeper != "keeps its kernel":
        _broken_server(tmp_path, monkeypatch,
                       ("            os.kill(init, signal.SIGKILL)\n            break\n", "            break\n"),
                       ("    status = os.waitpid(init, 0)[1]",
                        "    status = os.waitpid(init, 0)[1] if False else 0\n    time.sleep(3600)"),
                       ("import sys\n", "import sys\nimport time\n"))
    token = f"t{os.getpid() % 100000}{int(time.time()) % 1000}"
    with WarmKernels(limits, ahead=0) as pool:
        kernel = pool.take()
        assert "lingering" in _run_cell(kernel, LINGER.replace("TOKEN", token))
        assert len(_lingering(token)) == 4, _lingering(token)
        started = time.monotonic()
        kernel.close()
        took = time.monotonic() - started
        left = _lingering(token)
        keeper_gone = not kernel.keeper.is_running()
    assert left == [] and keeper_gone, left
    assert took < 4.5, took  # no wait on a process named like a keeper (today's close waited 5 s for it)


def test_a_stopped_zygote_is_replaced_at_once(tmp_path, limits, expected_outputs):
    path = notebooks.write(notebooks.solved(), tmp_path / "solved.ipynb")
    with WarmKernels(limits, ahead=1) as pool:
        pool.fill()
        first = pool.zygote
        server = psutil.Process(first.proc.pid)
        while server.children() and zygote.MARK not in " ".join(server.cmdline()):
            server = server.children()[0]
        server.suspend()
        deadline = time.monotonic() + 5
        while server.status() != psutil.STATUS_STOPPED and time.monotonic() < deadline:
            time.sleep(0.01)  # SIGSTOP takes effect a moment after it is sent
        assert not first.alive()
        started = time.monotonic()
        result = grade_notebook(path, expected_outputs, limits, pool.take)
        took = time.monotonic() - started
        assert pool.zygote is not first and pool.zygote.alive()
        assert not server.is_running()  # the stopped one was killed, not left behind
    assert result.score == 100
    assert took < limits.startup_timeout, took  # no kernel waited on the stopped zygote


def test_a_failed_fork_does_not_end_the_zygote(tmp_path, limits, expected_outputs, monkeypatch, capfd):
    # the first fork fails as it would with no process left to be had
    _broken_server(tmp_path, monkeypatch, ("            keeper = os.fork()\n", "            keeper = _fork_once()\n"),
                   ("def serve(config):", "_FAILED = []\n\n\ndef _fork_once():\n    if not _FAILED:\n"
                    "        _FAILED.append(1)\n        raise BlockingIOError(11, 'Resource temporarily unavailable')\n"
                    "    return os.fork()\n\n\ndef serve(config):"))
    path = notebooks.write(notebooks.solved(), tmp_path / "solved.ipynb")
    with WarmKernels(limits, ahead=0) as pool:
        results = [grade_notebook(path, expected_outputs, limits, pool.take) for _ in range(2)]
        first = pool.zygote
        assert first.alive()
        kernel = pool.take()
        assert kernel.zygote is first and _run_cell(kernel, "print('forked')") == "forked\n"
        kernel.close()
    assert [r.score for r in results] == [100, 100]
    assert "fork: [Errno 11]" in capfd.readouterr().err
