"""A checkout's own .venv serves a Dask cluster as docs/DEPLOY.md shows, with no PYTHONPATH.

`make` installs the grader into .venv editable (the Makefile's $(STAMP)), so `.venv/bin/dask scheduler`
and `.venv/bin/dask worker ADDRESS` import it from any folder. Here both are started exactly that
way, from a folder outside the checkout and with PYTHONPATH removed from their environment, and
`python -m grader grade ... --scheduler ADDRESS` grades one notebook on them. The client runs
from the checkout, as DEPLOY's table has it, so that a worker without the grader is what fails:
it fails as the grader's plugin reaches it (its log: "ModuleNotFoundError: No module named 'grader'"),
its nanny starts it again, and so on; the test stops at that line (or at a refusal) instead of
waiting out the client's two minutes of grace.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest

import notebooks

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
# Cheap to grade: ResNet50 left as the assignment's stub (tests/test_dask_cluster.py does the same).
STUB = notebooks.graded_cell(notebooks.assignment(), "ResNet50").source


def stop(proc):
    """SIGTERM the process group (a worker closes its kernels), then SIGKILL what is left."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(wait)
            return
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue
    proc.wait()


def tail(path, n=15):
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


@pytest.fixture
def outside():
    """A folder outside the checkout, short (kernels' IPC socket paths) and open to `nobody`."""
    folder = Path(tempfile.mkdtemp(prefix="ck-", dir="/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_scheduler_and_worker_from_the_checkouts_venv_grade_without_pythonpath(outside):
    if not (VENV_BIN / "dask").is_file():
        pytest.skip("this checkout has no .venv (make builds it)")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    procs = []

    def server(name, *args):
        folder = outside / name
        folder.mkdir()
        log = outside / f"{name}.log"
        with open(log, "wb") as f:
            procs.append(subprocess.Popen([str(VENV_BIN / "dask"), *args], cwd=folder,
                                          env={**env, "TMPDIR": str(folder)}, stdout=f, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        return procs[-1], log

    try:
        info = outside / "scheduler.json"
        scheduler, scheduler_log = server("scheduler", "scheduler", "--host", "127.0.0.1", "--port", "0",
                                          "--no-dashboard", "--scheduler-file", str(info))
        deadline = time.monotonic() + 60
        while not info.is_file() and time.monotonic() < deadline:
            assert scheduler.poll() is None, f"the scheduler stopped:\n{tail(scheduler_log)}"
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        worker, worker_log = server("worker", "worker", address, "--host", "127.0.0.1", "--nthreads", "1",
                                    "--nworkers", "1", "--no-dashboard")

        folder = outside / "class"
        folder.mkdir()
        notebooks.write(notebooks.solved(ResNet50=STUB), folder / "ResNets.ipynb")
        out = outside / "out"
        client = subprocess.Popen([str(VENV_BIN / "python"), "-m", "grader", "grade", str(folder),
                                   "--out", str(out), "--scheduler", address, "--no-progress"],
                                  cwd=ROOT, env={**env, "TMPDIR": str(outside)}, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True)
        lines = []
        reader = threading.Thread(target=lambda: lines.extend(client.stderr), daemon=True)
        reader.start()
        deadline = time.monotonic() + 150
        while client.poll() is None and time.monotonic() < deadline:
            refused = [line.strip() for line in lines if line.startswith("refused worker")]
            broken = [f"the {name} {'stopped' if p.poll() is not None else 'cannot import a module'}"
                      for name, p, log in (("scheduler", scheduler, scheduler_log), ("worker", worker, worker_log))
                      if p.poll() is not None or "ModuleNotFoundError" in log.read_text(errors="replace")]
            if refused or broken:  # its nanny would start it again and again: no need to wait for the client
                client.kill()
                pytest.fail(f"{'; '.join(refused + broken)}\nscheduler's log:\n{tail(scheduler_log)}\n"
                            f"worker's log:\n{tail(worker_log)}")
            time.sleep(0.2)
        if client.poll() is None:
            client.kill()
        client.wait()
        reader.join(5)
        said = "".join(lines)
        logs = f"scheduler's log:\n{tail(scheduler_log)}\nworker's log:\n{tail(worker_log)}"
        assert client.returncode == 0, f"{said}\n{logs}"
        assert f"worker {address.rsplit(':', 1)[0]}" in said and ": isolation: " in said, said  # accepted

        r = json.loads((out / "ResNets" / "results.json").read_text())  # a batch: a results folder per notebook
        assert r["extra_data"]["error"] == "", r["output"]
        assert r["extra_data"]["isolation"]["level"]  # graded by the worker's kernel
        by_function = {}
        for t in r["tests"]:
            got, most = by_function.get(t["extra_data"]["function"], (0, 0))
            by_function[t["extra_data"]["function"]] = (got + t["score"], most + t["max_score"])
        assert by_function["identity_block"][0] == by_function["identity_block"][1] > 0
        assert by_function["convolutional_block"][0] == by_function["convolutional_block"][1] > 0
        assert by_function["ResNet50"][0] < by_function["ResNet50"][1]  # the stub
    finally:
        for proc in reversed(procs):
            stop(proc)
