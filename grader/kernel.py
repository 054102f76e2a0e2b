"""Run a grading notebook in a fresh, isolated kernel of the grader's own choosing.

The kernel is this interpreter's ipykernel, from a kernelspec the grader writes
itself (never the notebook's), started in an empty temporary directory with a
scrubbed environment, so neither `solution` nor the expected outputs can be
imported from it. If a measuring cell kills or hangs the kernel, that function
alone fails: the remaining functions are measured in a new kernel.
"""

import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

KERNEL_NAME = "resnet-grader"
PASS_THROUGH_ENV = ("KERAS_BACKEND", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
                    "TF_NUM_INTEROP_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "LD_LIBRARY_PATH")


@dataclass(frozen=True)
class KernelOptions:
    """How long a cell may run. Seconds."""

    cell_timeout: float = 180.0
    startup_timeout: float = 60.0


@dataclass(frozen=True)
class CellRun:
    """What one cell of the grading notebook produced."""

    role: str
    function: str
    outputs: tuple
    failure: str = ""  # the kernel died or the cell timed out


def kernel_env(workdir):
    """A scrubbed environment: nothing of the grader's own paths or secrets."""
    env = {
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"]),
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "agg",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "KERAS_HOME": str(Path(workdir) / ".keras"),
        "JUPYTER_PLATFORM_DIRS": "1",
    }
    env.update({k: os.environ[k] for k in PASS_THROUGH_ENV if k in os.environ})
    return env


def _kernel_manager(specdir):
    """A kernel manager that knows only the grader's kernelspec: this interpreter's ipykernel."""
    spec = Path(specdir) / KERNEL_NAME
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-I", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "ResNet grader",
        "language": "python",
    }))
    ksm = KernelSpecManager(kernel_dirs=[str(specdir)], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=ksm)


def _role(cell):
    meta = cell.metadata.get("resnet_grader", {})
    return meta.get("role", ""), meta.get("function", "")


def run_notebook(nb, options=KernelOptions()):
    """Execute the grading notebook; return one CellRun per measuring cell, in order."""
    runs = []
    measure = [i for i, c in enumerate(nb.cells) if _role(c)[0] == "measure"]
    prelude = [i for i, c in enumerate(nb.cells) if _role(c)[0] not in ("measure", "blocks")]
    blocks = [i for i, c in enumerate(nb.cells) if _role(c)[0] == "blocks"]
    pending = list(measure)
    while pending:
        with tempfile.TemporaryDirectory(prefix="resnet-grader-") as tmp:
            workdir = Path(tmp) / "work"
            workdir.mkdir()
            client = NotebookClient(
                nb, km=_kernel_manager(Path(tmp) / "kernels"), timeout=options.cell_timeout,
                startup_timeout=options.startup_timeout, allow_errors=True, interrupt_on_timeout=True,
                record_timing=False, resources={"metadata": {"path": str(workdir)}},
            )
            pending = _run_in_one_kernel(client, nb, prelude, blocks, pending, runs, workdir)
    return tuple(runs)


def _run_in_one_kernel(client, nb, prelude, blocks, pending, runs, workdir):
    """Run the prelude, then measuring cells until one breaks the kernel; return those left."""
    left = list(pending)
    try:
        with client.setup_kernel(env=kernel_env(workdir), cwd=str(workdir)):
            for i in prelude:
                try:
                    client.execute_cell(nb.cells[i], i)
                except CellTimeoutError:
                    nb.cells[i].outputs = []
            while left:
                i = left.pop(0)
                role, function = _role(nb.cells[i])
                try:
                    if function == "ResNet50":
                        for b in blocks:
                            client.execute_cell(nb.cells[b], b)
                    client.execute_cell(nb.cells[i], i)
                except (CellTimeoutError, DeadKernelError) as exc:
                    why = "timed out" if isinstance(exc, CellTimeoutError) else "crashed the kernel"
                    runs.append(CellRun(role, function, (), f"measuring {function} {why}"))
                    return left
                runs.append(CellRun(role, function, tuple(nb.cells[i].outputs)))
    except Exception as exc:  # the kernel died or would not start outside a measuring cell
        for i in left:
            role, function = _role(nb.cells[i])
            runs.append(CellRun(role, function, (), f"the kernel failed while running the notebook's code: "
                                                    f"{type(exc).__name__}: {exc}"))
        return []
    return []
