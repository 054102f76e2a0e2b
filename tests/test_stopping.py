"""Stopping the grader: Ctrl-C, SIGTERM and SIGKILL each leave no process and no temporary folder.

Each test starts `python -m grader grade` in its own session, as a terminal would, with its own
TMPDIR and a marker in its environment, waits until kernels are working, stops it, and then
looks for anything left: a process carrying the marker (workers, the resource tracker) or
naming the TMPDIR on its command line (kernels, whose environment is scrubbed), and any entry
in the TMPDIR.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest

import notebooks

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def leftover_processes(marker, tmpdir):
    found = []
    for p in psutil.process_iter(["pid", "cmdline"]):
        try:
            if str(tmpdir) in " ".join(p.info["cmdline"] or []) or p.environ().get("GRADER_STOP_TEST") == marker:
                found.append(" ".join(p.info["cmdline"] or [])[:200])
        except psutil.Error:
            pass
    return found


class Run:
    """`python -m grader grade ARGS` in its own session, with a private TMPDIR and a marker."""

    def __init__(self, tmp_path, *args, tmpdir=None):
        self.marker = uuid.uuid4().hex
        # Short and open to other users, so that the kernels' folders go into it (grader.leftovers: their
        # IPC socket paths must fit in 107 bytes, and as root the kernel runs as nobody): what is left is seen.
        self.tmpdir = tmpdir or Path(tempfile.mkdtemp(prefix="stop-", dir="/tmp"))
        self.tmpdir.chmod(0o755)
        _RUNS.append(self)
        env = dict(os.environ, TMPDIR=str(self.tmpdir), GRADER_STOP_TEST=self.marker, TF_CPP_MIN_LOG_LEVEL="3")
        # As a terminal's foreground job: Ctrl-C's signal at its default, even where this test runs as a
        # background job (`make test &`, some CI runners), which starts with SIGINT ignored.
        self.proc = subprocess.Popen([sys.executable, "-m", "grader", "grade", *map(str, args)], cwd=ROOT, env=env,
                                     start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def wait_for(self, condition, timeout=240):
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline, "the grader never got that far"
            time.sleep(0.2)

    def kernels(self):
        # a kernel on its own runs ipykernel_launcher; one forked from a zygote, grader/kernel_launcher.py
        return [p for p in leftover_processes(self.marker, self.tmpdir)
                if "ipykernel_launcher" in p or "kernel_launcher.py" in p]

    def stop(self, how):
        """Send the signal; return (seconds until the grader exited, its exit status, stdout, stderr)."""
        start = time.monotonic()
        if how == "ctrl-c":
            os.killpg(self.proc.pid, signal.SIGINT)  # what a terminal sends to its foreground process group
        else:
            self.proc.send_signal(how)
        out, err = self.proc.communicate(timeout=60)
        return time.monotonic() - start, self.proc.returncode, out, err

    def nothing_left(self, within=10.0):
        """Seconds until no process of the run was left (asserted to be at most `within`)."""
        start = time.monotonic()
        while leftover_processes(self.marker, self.tmpdir) and time.monotonic() - start < within:
            time.sleep(0.2)
        assert leftover_processes(self.marker, self.tmpdir) == []
        return time.monotonic() - start


_RUNS = []


@pytest.fixture(autouse=True)
def _clean_up_runs():
    """Whatever a failing test left: its grader's process group, and its TMPDIR."""
    yield
    while _RUNS:
        run = _RUNS.pop()
        if run.proc.poll() is None:
            os.killpg(run.proc.pid, signal.SIGKILL)
            run.proc.wait()
        shutil.rmtree(run.tmpdir, ignore_errors=True)


@pytest.fixture
def class_folder(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    for i in range(4):
        notebooks.write(notebooks.solved(), folder / f"student{i}.ipynb")
    return folder


def _batch_stopped_by(how, tmp_path, class_folder):
    out = tmp_path / "out"
    run = Run(tmp_path, class_folder, "--out", out, "--no-progress", "--workers", "2")
    run.wait_for(lambda: len(run.kernels()) >= 2)  # both workers have a kernel up
    time.sleep(3)  # and are grading
    seconds, status, stdout, stderr = run.stop(how)
    left_after = run.nothing_left()
    return run, out, seconds, status, stderr, left_after


@pytest.mark.parametrize("how, status", [("ctrl-c", 130), (signal.SIGTERM, 143)], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_stop_a_batch_within_seconds(how, status, tmp_path, class_folder):
    run, out, seconds, code, stderr, left_after = _batch_stopped_by(how, tmp_path, class_folder)
    print(f"{getattr(how, 'name', how)}: stopped in {seconds:.1f} s, processes gone {left_after:.1f} s later")
    assert code == status  # how long it took is printed, not asserted: these machines are shared and noisy
    assert "Traceback" not in stderr, stderr
    last = stderr.strip().splitlines()[-1]
    m = re.fullmatch(r"stopped \(SIG(INT|TERM)\): (\d) of 4 submissions graded; run the same command again to grade "
                     r"the rest", last)
    assert m, stderr
    graded = int(m.group(2))
    assert graded < 4  # it stopped: it did not grade on to the end
    assert len(list(out.glob("*/results.json"))) == graded  # what was written stays; nothing half-written
    assert not list(out.rglob(".*.tmp"))
    assert list(run.tmpdir.iterdir()) == []


def test_a_batch_whose_parent_is_killed_leaves_nothing_and_the_next_run_cleans_up(tmp_path, class_folder):
    run, out, seconds, code, stderr, left_after = _batch_stopped_by(signal.SIGKILL, tmp_path, class_folder)
    print(f"SIGKILL: workers and kernels gone {left_after:.1f} s after the parent; "
          f"left in TMPDIR: {sorted(p.name for p in run.tmpdir.iterdir())}")
    assert code == -signal.SIGKILL
    # A folder a killed process could not remove is removed by the next run, which starts by doing so.
    broken = tmp_path / "broken.ipynb"
    broken.write_text("not a notebook")
    again = Run(tmp_path, broken, "--out", tmp_path / "out-again", tmpdir=run.tmpdir)
    again.proc.communicate(timeout=120)
    assert again.proc.returncode == 0
    assert list(run.tmpdir.iterdir()) == []


def test_leftover_folders_of_dead_processes_are_removed_and_others_kept(short_tmp, monkeypatch):
    from grader import leftovers

    monkeypatch.setattr("tempfile.tempdir", str(short_tmp))
    mine = leftovers.new_folder()
    dead = subprocess.run([sys.executable, "-c", "from grader import leftovers; print(leftovers.new_folder())"],
                          cwd=ROOT, env=dict(os.environ, TMPDIR=str(short_tmp)), capture_output=True, text=True)
    dead_folder = Path(dead.stdout.strip())
    assert dead_folder.is_dir() and dead_folder.parent == short_tmp
    other = short_tmp / "resnet-grader-notes"  # not named by a process: never touched
    other.mkdir()
    assert leftovers.remove_stale(short_tmp) == 1
    assert sorted(short_tmp.iterdir()) == sorted([mine, other])


@pytest.mark.parametrize("how", ["ctrl-c", signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "sigterm", "sigkill"])
def test_stopping_a_single_grade(how, tmp_path):
    path = notebooks.write(notebooks.solved(), tmp_path / "nb.ipynb")
    run = Run(tmp_path, path, "--out", tmp_path / "out")
    run.wait_for(lambda: len(run.kernels()) >= 1)
    time.sleep(3)
    seconds, code, stdout, stderr = run.stop(how)
    left_after = run.nothing_left()
    name = getattr(how, "name", how)
    print(f"single grade, {name}: stopped in {seconds:.1f} s, processes gone {left_after:.1f} s later, "
          f"left in TMPDIR: {sorted(p.name for p in run.tmpdir.iterdir())}")
    assert not (tmp_path / "out" / "results.json").exists()  # it stopped before the end (the time is printed)
    if how == signal.SIGKILL:
        assert code == -signal.SIGKILL
        broken = tmp_path / "broken.ipynb"
        broken.write_text("not a notebook")
        again = Run(tmp_path, broken, "--out", tmp_path / "out-again", tmpdir=run.tmpdir)
        again.proc.communicate(timeout=120)  # the next run removes the killed run's folders
    else:
        signum = signal.SIGINT if how == "ctrl-c" else how
        assert code == 128 + signum
        assert stderr.strip().splitlines()[-1] == (f"stopped ({signal.Signals(signum).name}): {path} was not graded; "
                                                   "run the same command again to grade it"), stderr
        assert "Traceback" not in stderr
    assert list(run.tmpdir.iterdir()) == []
