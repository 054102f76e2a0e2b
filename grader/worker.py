"""One grading worker: what grades submissions one at a time in a process that starts kernels.

Used by each process of the local pool (grader.local_pool) and by each Dask worker
(grader.dask_pool), so both grade with the same code: the expected outputs loaded once,
kernels kept warm (grader.pool), under limits whose isolation was resolved for this host.
Create it, grade and close it from one thread that lives as long as its kernels: a kernel's
parent-death signal fires when the thread that started it ends.
"""

import os
from pathlib import Path

from grader import expected as expected_outputs
from grader import sandbox
from grader.grade import failed_result, grade_bytes, grade_notebook
from grader.pool import WarmKernels

# How each worker keeps its next kernel: started ahead, and whether it imports TensorFlow ahead too.
POOL = {"ahead": int(os.environ.get("GRADER_POOL_AHEAD", "1")), "warm_up": os.environ.get("GRADER_POOL_WARM", "1") == "1"}


class GradingWorker:
    """Grades one submission at a time; never raises for a submission (a grader bug becomes its result)."""

    def __init__(self, limits, expected_dir=expected_outputs.DEFAULT_DIR, version=None):
        if limits.isolation not in sandbox.LEVELS:
            raise ValueError("a grading worker needs limits with their isolation resolved (grader.sandbox.resolve)")
        self.limits = limits
        self.isolation = sandbox.isolation_info(limits)
        # GraderError when the default version's cannot be loaded; the others' are loaded when first needed
        self.expected = expected_outputs.load_versions(expected_dir, lazy=True)
        self.version = version  # the notebook version every submission is graded as; None: each its own
        self.kernels = WarmKernels(limits, **POOL)
        self.kernels.fill()  # the first kernel warms up while the batch is being planned

    def grade_path(self, path):
        return self._safely(Path(path).name, grade_notebook, path)

    def grade_bytes(self, name, data):
        return self._safely(name, grade_bytes, name, data)

    def _safely(self, name, grade, *args):
        try:
            return grade(*args, self.expected, self.limits, self.kernels.take, self.version)
        except Exception as exc:  # never lose a submission to a grader bug
            return failed_result(name, f"internal grader error: {type(exc).__name__}: {exc}")

    def close(self):
        self.kernels.close()
