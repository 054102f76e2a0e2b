"""The local pool: grade a batch's submissions in worker processes on this machine (the default).

One of the batch's two executors (the other is grader.dask_pool): `grade(jobs)` yields
(job, GradeResult, isolation info) as each submission is graded; grader.batch records them.
The isolation is resolved here, once, in the process that decides how kernels run, and
passed down to every worker, so all run their kernels the same way, the way reported.
"""

import concurrent.futures as cf
import multiprocessing
import multiprocessing.util
import os
import signal
import time

from grader import expected as expected_outputs
from grader import leftovers, sandbox
from grader.grade import failed_result
from grader.sandbox import Limits
from grader.worker import GradingWorker

_worker = {}  # this process's GradingWorker, in a pool worker (or in the parent for one worker)


def _init_worker(limits, expected_dir, version=None):
    import atexit

    atexit.register(_close_worker)
    _worker["grading"] = GradingWorker(limits, expected_dir, version)


def _init_worker_process(limits, expected_dir, version=None):
    """A pool worker: the parent alone decides when to stop (it ignores Ctrl-C), and it goes, with
    its kernels, on SIGTERM or as soon as the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)
    parent_death_signal(signal.SIGTERM)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the signal was asked for
        _stop_worker(signal.SIGTERM, None)
    _init_worker(limits, expected_dir, version)
    # A pool worker ends through os._exit, which runs no atexit handler, only multiprocessing's own
    # finalizers: close the kernels there, rather than trust bubblewrap's --die-with-parent, which
    # misses a parent that exits before bwrap has asked for the signal (a batch of unreadable files).
    multiprocessing.util.Finalize(None, _close_worker, exitpriority=10)


def parent_death_signal(signum):
    """Ask Linux to send `signum` to this process when the thread that started it ends."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signum, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _stop_worker(signum, frame):
    """Kill this worker's kernels without talking to them, remove their folders, and exit at once."""
    from grader.kernel import kill_all

    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough (the pool sends it again when broken)
    kill_all()
    os._exit(128 + signum)


def _grade_in_worker(path):
    return _worker["grading"].grade_path(path)


def _close_worker():
    grading = _worker.pop("grading", None)
    if grading is not None:
        grading.close()


def _stop_pool(pool, grace=5.0):
    """Stop every worker now: SIGTERM (each kills its kernels and exits), then SIGKILL for any left."""
    procs = list((pool._processes or {}).values())  # noqa: SLF001 (the executor has no public handle)
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            sandbox.kill_tree(p.pid)  # its kernels die with it (bubblewrap --die-with-parent, pdeathsig)
    leftovers.remove_stale()


class LocalPool:
    """`workers` processes on this machine, each a GradingWorker (one worker: this process itself)."""

    def __init__(self, limits=Limits(), workers=None, expected_dir=expected_outputs.DEFAULT_DIR, version=None):
        self.limits = sandbox.resolve(limits) if limits.isolation == "auto" else limits
        if self.limits is None:
            raise RuntimeError(f"no kernel can be started with isolation {limits.isolation!r} on this machine")
        self.isolation = sandbox.isolation_info(self.limits)
        self.workers = workers or os.cpu_count() or 1
        self.expected_dir = expected_dir
        self.version = version  # a notebook version forced on every submission (grader.versions); None: detected

    def grade(self, jobs):
        """Yield (job, result, isolation info) for each job, in the order they are graded."""
        if not jobs:
            return
        if self.workers == 1 or len(jobs) == 1:
            _init_worker(self.limits, self.expected_dir, self.version)
            try:
                for job in jobs:
                    yield job, _grade_in_worker(job.path), self.isolation
            finally:
                _close_worker()
            return
        ctx = multiprocessing.get_context("spawn")
        pool = cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker_process,
                                      initargs=(self.limits, self.expected_dir, self.version))
        try:
            futures = {pool.submit(_grade_in_worker, job.path): job for job in jobs}
            for future in cf.as_completed(futures):
                job = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # a worker died: this submission still gets a result
                    result = failed_result(job.path.name, f"the grading worker failed: {type(exc).__name__}: {exc}")
                yield job, result, self.isolation
        except BaseException:  # stopped (KeyboardInterrupt, SystemExit, the generator closed)
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)
