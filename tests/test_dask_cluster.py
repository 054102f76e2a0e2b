"""Grading on a Dask cluster: a scheduler and two workers, separate processes on 127.0.0.1.

One cluster serves the module's tests, in order: a batch (the same results as the local pool,
and a resume), a worker SIGKILLed halfway, a client SIGKILLed and the same command again, a
worker whose grader differs, no scheduler, and last the scheduler lost midway. Each worker has
its own TMPDIR, so what it leaves behind (kernels, whose command lines name their folder there,
and folders) is told from everything else. The notebooks are cheap to grade: two graded
functions each, ResNet50 left as the assignment's stub.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest

import notebooks
from grader import record
from grader.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
DASK = Path(sys.executable).parent / "dask"
# What the README asks of each worker: one grading slot (one thread, one process); the memory
# limit is the worker process's own (its kernels have theirs, --memory).
WORKER_OPTIONS = ("--nthreads", "1", "--nworkers", "1", "--memory-limit", "2GiB", "--no-dashboard")
STUB = notebooks.graded_cell(notebooks.assignment(), "ResNet50").source
NO_RELU = "def identity_block(X, f, filters, stage, block):\n    return X\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(args, tmpdir, pythonpath=ROOT, cwd=None):
    env = dict(os.environ, TMPDIR=str(tmpdir), PYTHONPATH=str(pythonpath), TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([str(DASK), *args], cwd=cwd or tmpdir, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def processes_naming(folder):
    """Processes whose command line names `folder` (a worker's kernels name their folder in its TMPDIR)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if str(folder) in " ".join(p.info["cmdline"] or []):
                found.append(p)
        except psutil.Error:
            pass
    return found


def stop(proc):
    """SIGTERM the process group (a worker closes its kernels), then SIGKILL what is left."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


class Cluster:
    def __init__(self, base):
        self.base = base
        self.address = f"tcp://127.0.0.1:{free_port()}"
        self.scheduler = start(["scheduler", "--host", "127.0.0.1", "--port", self.address.rsplit(":", 1)[1],
                                "--no-dashboard"], self._tmpdir("scheduler"))
        self.workers = [self.start_worker(i) for i in range(2)]
        self.wait_for(2)

    def _tmpdir(self, name):
        folder = self.base / name
        folder.mkdir(exist_ok=True)
        return folder

    def start_worker(self, i, pythonpath=ROOT, name=None):
        tmpdir = self._tmpdir(name or f"w{i}")
        proc = start(["worker", self.address, "--host", "127.0.0.1", *WORKER_OPTIONS], tmpdir, pythonpath)
        proc.tmpdir = tmpdir
        return proc

    def client(self):
        from distributed import Client

        return Client(self.address, timeout=30, set_as_default=False)

    def wait_for(self, n, timeout=120):
        with self.client() as c:
            c.wait_for_workers(n, timeout=timeout)

    def worker_of(self, proc):
        """(address, pid) of the Dask worker process a `dask worker` command started."""
        with self.client() as c:
            pids = c.run(os.getpid)
        children = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
        return next((a, pid) for a, pid in pids.items() if pid in children)

    def close(self):
        for proc in [*self.workers, self.scheduler]:
            stop(proc)


@pytest.fixture(scope="module")
def cluster():
    base = Path(tempfile.mkdtemp(prefix="dk-", dir="/tmp"))  # short: kernels' IPC socket paths live under it
    os.chmod(base, 0o755)
    c = Cluster(base)
    try:
        yield c
    finally:
        c.close()
        deadline = time.monotonic() + 10
        while processes_naming(base) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p.pid for p in processes_naming(base)]  # the workers' kernels died with them
        shutil.rmtree(base, ignore_errors=True)
        assert left == [], left


def cheap_class(folder, n_solved=1):
    folder.mkdir(parents=True)
    for i in range(n_solved):
        notebooks.write(notebooks.solved(ResNet50=STUB), folder / f"solved{i}.ipynb")
    notebooks.write(notebooks.solved(ResNet50=STUB, identity_block=NO_RELU), folder / "mistake.ipynb")
    (folder / "broken.ipynb").write_bytes(b"\x89PNG not a notebook")
    return sorted(folder.glob("*.ipynb"))


def results(out):
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(out.glob("*/results.json"))}


def timeless(payload):
    return {k: v for k, v in payload.items() if k != "execution_time"}


@pytest.fixture
def recorded(monkeypatch):
    """Every result the batch records, by results folder name: none may be recorded twice."""
    seen = []
    real = record.write_result

    def spy(folder, *args, **kw):
        seen.append(Path(folder).name)
        return real(folder, *args, **kw)

    monkeypatch.setattr("grader.batch.write_result", spy)
    return seen


def grade_args(folder, out, cluster):
    return ["grade", str(folder), "--out", str(out), "--scheduler", cluster.address, "--no-progress"]


def test_a_batch_on_the_cluster_equals_the_local_pool_and_resumes(tmp_path, cluster, capsys, recorded):
    folder = tmp_path / "class"
    cheap_class(folder)
    out = tmp_path / "cluster"
    assert main(grade_args(folder, out, cluster)) == 0
    err = capsys.readouterr().err
    on_cluster = results(out)
    assert sorted(on_cluster) == ["broken", "mistake", "solved0"] and sorted(recorded) == sorted(on_cluster)
    assert on_cluster["solved0"]["score"] > on_cluster["mistake"]["score"] > 0 == on_cluster["broken"]["score"]
    for name in on_cluster:
        assert (out / name / "report.html").is_file()
    assert (out / "gradebook.csv").is_file() and json.loads((out / "class.json").read_text())["submissions"] == 3
    # Each worker said which isolation it grades under, and each result says which graded it.
    levels = {line.split(": isolation: ")[1].split(":")[0] for line in err.splitlines() if ": isolation: " in line}
    assert len(levels) == 1, err
    graded_by = {r["extra_data"]["isolation"]["level"] for r in on_cluster.values()}
    assert graded_by == levels

    local = tmp_path / "local"
    assert main(["grade", str(folder), "--out", str(local), "--workers", "1", "--no-progress"]) == 0
    assert {k: timeless(v) for k, v in results(local).items()} == {k: timeless(v) for k, v in on_cluster.items()}

    # Resumed: nothing graded again; a results folder removed is graded again, alone.
    recorded.clear()
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    assert main(grade_args(folder, out, cluster)) == 0
    assert recorded == [] and {p: p.stat().st_mtime_ns for p in out.glob("*/results.json")} == stamps
    shutil.rmtree(out / "mistake")
    assert main(grade_args(folder, out, cluster)) == 0
    assert recorded == ["mistake"] and timeless(results(out)["mistake"]) == timeless(on_cluster["mistake"])


def test_a_worker_killed_halfway_loses_nothing_and_leaves_no_kernel(tmp_path, cluster, capsys, recorded):
    folder = tmp_path / "class"
    cheap_class(folder, n_solved=3)
    victim = cluster.workers[0]
    address, pid = cluster.worker_of(victim)
    killed = {}

    def kill_when_busy():
        """SIGKILL the `dask worker` command and its worker process (not the kernels) while it grades."""
        with cluster.client() as c:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline and not c.processing().get(address):
                time.sleep(0.2)
            time.sleep(2)  # its kernel is at work
            killed["kernels"] = [p.pid for p in processes_naming(victim.tmpdir)]
            killed["grading"] = list(c.processing().get(address, ()))
        for p in (victim.pid, pid):
            os.kill(p, signal.SIGKILL)
        at = time.monotonic()
        while processes_naming(victim.tmpdir) and time.monotonic() - at < 10:
            time.sleep(0.1)
        killed["gone after"] = time.monotonic() - at

    killer = threading.Thread(target=kill_when_busy)
    killer.start()
    out = tmp_path / "out"
    assert main(grade_args(folder, out, cluster)) == 0
    killer.join()
    graded = results(out)
    print(f"killed worker {address} while it graded {killed['grading']} with {len(killed['kernels'])} kernel "
          f"processes up")
    assert killed["grading"] and killed["kernels"]
    assert sorted(graded) == ["broken", "mistake", "solved0", "solved1", "solved2"]
    assert sorted(recorded) == sorted(graded)  # each recorded once
    assert all("Grading failed" not in r["output"] for name, r in graded.items() if name != "broken")
    assert all(r["score"] == graded["solved0"]["score"] for name, r in graded.items() if name.startswith("solved"))

    # Its kernels died with it (bubblewrap --die-with-parent); only their folders stayed behind.
    assert processes_naming(victim.tmpdir) == []
    left = sorted(p.name for p in victim.tmpdir.glob("resnet-grader-*"))
    assert left  # SIGKILL leaves no time to clean up
    print(f"its kernels were gone {killed['gone after']:.1f} s after the kill; left in its TMPDIR: "
          f"{sorted(p.name for p in victim.tmpdir.iterdir())}")
    # A worker started again on that host removes them as it is set up.
    cluster.workers[0] = cluster.start_worker(0)
    cluster.wait_for(2)
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(folder / "broken.ipynb", one)
    assert main(grade_args(one, tmp_path / "again", cluster)) == 0
    assert not [p for p in victim.tmpdir.glob("resnet-grader-*") if p.name in left]


def test_a_killed_client_resumes_with_the_same_command(tmp_path, cluster, recorded):
    folder = tmp_path / "class"
    cheap_class(folder, n_solved=2)
    out = tmp_path / "out"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    client = subprocess.Popen([sys.executable, "-m", "grader", *grade_args(folder, out, cluster)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(list(out.glob("*/results.json"))) < 2 and time.monotonic() < deadline:  # the broken one, and one more
        assert client.poll() is None, client.communicate()
        time.sleep(0.1)
    client.kill()
    client.communicate()
    before = {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/results.json")}
    print(f"client killed with {sorted(before)} recorded")
    assert 2 <= len(before) < 4
    assert main(grade_args(folder, out, cluster)) == 0
    assert sorted(recorded) == sorted(set(results(out)) - set(before))
    assert sorted(results(out)) == ["broken", "mistake", "solved0", "solved1"]
    assert {n: (out / n / "results.json").stat().st_mtime_ns for n in before} == before
    assert not list(out.rglob(".*.tmp"))  # the killed client left no half-written file


def test_a_worker_with_another_grader_is_refused_and_the_others_grade(tmp_path, cluster, capsys):
    copy = tmp_path / "copy"
    for part in ("grader", "solution"):
        shutil.copytree(ROOT / part, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
    with open(copy / "grader" / "spec.py", "a") as f:
        f.write("\n# another version of the grader\n")
    other = cluster.start_worker(2, pythonpath=copy, name="other")
    try:
        cluster.wait_for(3)
        with cluster.client() as c:  # it joined, with its own grader
            addresses = set(c.scheduler_info(n_workers=-1)["workers"])
            theirs = c.run(lambda: __import__("grader.record").record.grader_fingerprint())
        odd = [a for a in addresses if theirs[a] != record.grader_fingerprint()]
        assert len(odd) == 1
        folder = tmp_path / "class"
        cheap_class(folder, n_solved=0)
        out = tmp_path / "out"
        assert main(grade_args(folder, out, cluster)) == 0
        err = capsys.readouterr().err
        refusals = [line for line in err.splitlines() if line.startswith("refused worker")]
        assert refusals == [f"refused worker {odd[0]}: its grader differs from the client's (grader fingerprint "
                            f"{theirs[odd[0]][:12]}, the client's {record.grader_fingerprint()[:12]}); it gets no "
                            "submissions"], err
        assert sorted(results(out)) == ["broken", "mistake"]
        assert "Grading failed" not in results(out)["mistake"]["output"]
    finally:
        stop(other)
    assert processes_naming(other.tmpdir) == []


def test_no_scheduler_is_one_line_and_a_non_zero_exit(tmp_path, capsys):
    import dask

    folder = tmp_path / "class"
    cheap_class(folder, n_solved=0)
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    with dask.config.set({"distributed.comm.timeouts.connect": "3s"}):
        status = main(["grade", str(folder), "--out", str(tmp_path / "out"), "--scheduler", address, "--no-progress"])
    err = capsys.readouterr().err
    assert status == 3
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot reach the Dask scheduler at {address}: "), err
    assert lines[0].endswith("0 of 2 submissions graded (their results are kept); run the same command again to "
                             "grade the rest")
    assert not list((tmp_path / "out").glob("*/results.json"))


def test_the_scheduler_lost_midway_keeps_the_results_so_far(tmp_path, cluster):
    """Last: it kills the module's scheduler."""
    folder = tmp_path / "class"
    cheap_class(folder, n_solved=2)
    out = tmp_path / "out"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="3s")
    client = subprocess.Popen([sys.executable, "-m", "grader", *grade_args(folder, out, cluster)], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while len(list(out.glob("*/results.json"))) < 2 and time.monotonic() < deadline:
        assert client.poll() is None, client.communicate()
        time.sleep(0.1)
    os.killpg(cluster.scheduler.pid, signal.SIGKILL)
    _, err = client.communicate(timeout=120)
    kept = results(out)
    print(f"scheduler killed; {sorted(kept)} kept; the client said: {err.strip()}")
    assert client.returncode == 3
    assert "Traceback" not in err
    m = err.strip().splitlines()[-1]
    assert m.startswith(f"error: lost the connection to the Dask scheduler at {cluster.address}; "), err
    assert f"{len(kept)} of 4 submissions graded (their results are kept)" in m
    assert 2 <= len(kept) < 4
    assert sorted(record.read_manifest(out)) == sorted(kept)
    assert not list(out.rglob(".*.tmp"))
