"""Grade a class: parallel workers with warm kernels, atomic results, a gradebook, and resume.

The parent process is the only writer: workers grade and return results, the
parent writes each results.json atomically, records its hash in a manifest, and
rewrites the gradebook. A submission whose content, grader and expected outputs
are unchanged since its recorded result is not graded again.
"""

import concurrent.futures as cf
import csv
import hashlib
import io
import json
import multiprocessing
import os
import signal
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from grader import expected as expected_outputs
from grader import html_report, leftovers, report, sandbox
from grader.grade import failed_result, grade_notebook
from grader.sandbox import Limits

GRADER_DIR = Path(__file__).parent
MANIFEST = ".grader-manifest.json"


def write_atomic(path, text):
    """Write via a temporary file and rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def grader_fingerprint(expected_dir=expected_outputs.DEFAULT_DIR):
    """A hash of the grader's code and expected outputs: results made by another grader are stale."""
    h = hashlib.sha256()
    for path in sorted(GRADER_DIR.glob("*.py")) + sorted(Path(expected_dir).glob("*")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    h.update((GRADER_DIR.parent / "solution" / "blocks.py").read_bytes())
    return h.hexdigest()


def submission_key(path, fingerprint):
    try:
        data = Path(path).read_bytes()
    except OSError:
        data = b""
    return hashlib.sha256(fingerprint.encode() + b"\0" + data).hexdigest()


@dataclass(frozen=True)
class Job:
    path: Path
    out: Path  # the folder its results.json goes to
    key: str


def plan(paths, out):
    """One results folder per submission, named after it; clashing names get a numbered suffix."""
    seen, jobs = {}, []
    fingerprint = grader_fingerprint()
    for p in paths:
        stem = p.stem
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        folder = out / (stem if n == 0 else f"{stem}-{n + 1}")
        jobs.append(Job(p, folder, submission_key(p, fingerprint)))
    return jobs


# ----------------------------------------------------------------------------- workers

_worker = {}
# How each worker keeps its next kernel: started ahead, and whether it imports TensorFlow ahead too.
POOL = {"ahead": int(os.environ.get("GRADER_POOL_AHEAD", "1")), "warm_up": os.environ.get("GRADER_POOL_WARM", "1") == "1"}


def _init_worker(limits, expected_dir):
    import atexit

    from grader.pool import WarmKernels

    atexit.register(_close_worker)
    _worker["limits"] = limits
    _worker["expected"] = expected_outputs.load_all(expected_dir)
    _worker["kernels"] = WarmKernels(limits, **POOL)
    _worker["kernels"].fill()  # the first kernel warms up while the batch is being planned


def _init_worker_process(limits, expected_dir):
    """A pool worker: the parent alone decides when to stop (it ignores Ctrl-C), and it goes, with
    its kernels, on SIGTERM or as soon as the parent dies."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _stop_worker)
    parent_death_signal(signal.SIGTERM)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the signal was asked for
        _stop_worker(signal.SIGTERM, None)
    _init_worker(limits, expected_dir)


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
    try:
        return grade_notebook(path, _worker["expected"], _worker["limits"], _worker["kernels"].take)
    except Exception as exc:  # never lose a submission to a grader bug
        return failed_result(Path(path).name, f"internal grader error: {type(exc).__name__}: {exc}")


def _close_worker():
    if "kernels" in _worker:
        _worker["kernels"].close()


# ----------------------------------------------------------------------------- parent


class _signals_held:
    """Hold Ctrl-C and SIGTERM back (in the main thread) until the block is done."""

    SIGNALS = {signal.SIGINT, signal.SIGTERM}

    def __enter__(self):
        self.held = threading.current_thread() is threading.main_thread()
        if self.held:
            signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)

    def __exit__(self, *exc):
        if self.held:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)


def _stop_pool(pool, grace=5.0):
    """Stop every worker now: SIGTERM (each kills its kernels and exits), then SIGKILL for any left."""
    import time

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


def gradebook_csv(rows):
    """One row per submission, a column per check."""
    columns = ["submission", "score", "max_score"]
    for row in rows:
        for t in row["tests"]:
            if t["name"] not in columns:
                columns.append(t["name"])
    columns.append("error")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for row in rows:
        by = {t["name"]: t["score"] for t in row["tests"]}
        error = (row.get("extra_data") or {}).get("error", "")
        w.writerow([row["submission"], row["score"], sum(t["max_score"] for t in row["tests"])]
                   + [by.get(c, "") for c in columns[3:-1]] + [error])
    return buf.getvalue()


class Batch:
    def __init__(self, out, limits=Limits(), workers=None, expected_dir=expected_outputs.DEFAULT_DIR,
                 progress=True, visibility="visible"):
        self.out = Path(out)
        self.visibility = visibility
        # Resolved here, once, so that every worker runs its kernels the same way, the way reported.
        self.limits = sandbox.resolve(limits) if limits.isolation == "auto" else limits
        if self.limits is None:
            raise RuntimeError(f"no kernel can be started with isolation {limits.isolation!r} on this machine")
        self.graded = self.total = 0  # submissions with results so far, and in all (for a stopped batch)
        self.workers = workers or os.cpu_count() or 1
        self.expected_dir = expected_dir
        self.progress = progress
        self.manifest_path = self.out / MANIFEST
        try:
            self.manifest = json.loads(self.manifest_path.read_text())
        except (OSError, ValueError):
            self.manifest = {}

    def _done(self, job):
        """Whether this exact submission was graded by this exact grader, and its results are intact."""
        entry = self.manifest.get(str(job.out.relative_to(self.out)))
        try:
            text = (job.out / "results.json").read_text()
        except OSError:
            return None
        if entry and entry["key"] == job.key and entry["results_sha256"] == hashlib.sha256(text.encode()).hexdigest():
            return json.loads(text)
        return None

    def _record(self, job, result):
        payload = report.gradescope(result, self.visibility, sandbox.isolation_info(self.limits))
        text = report.results_json(payload)
        write_atomic(job.out / "results.json", text)
        write_atomic(job.out / "report.html", html_report.render(result))
        self.manifest[str(job.out.relative_to(self.out))] = {
            "submission": str(job.path), "key": job.key, "results_sha256": hashlib.sha256(text.encode()).hexdigest()}
        write_atomic(self.manifest_path, json.dumps(self.manifest, indent=1, sort_keys=True))
        return payload

    def run(self, paths, on_result=None):
        """Grade every submission; return {submission path: results.json payload}.

        Ctrl-C or SIGTERM (raised here as KeyboardInterrupt) stops the workers and their kernels
        within seconds and propagates; what was recorded stays, and `graded` says how much.
        """
        leftovers.remove_stale()
        jobs = plan(paths, self.out)
        payloads, todo = {}, []
        for job in jobs:
            cached = self._done(job)
            if cached is not None:
                payloads[job] = cached
            else:
                todo.append(job)
        self.total, self.graded = len(jobs), len(payloads)
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="nb", disable=not self.progress,
                   desc="grading", dynamic_ncols=True)
        try:
            for job, result in self._grade(todo):
                with _signals_held():  # a stop waits until this submission's files are all written
                    payloads[job] = self._record(job, result)
                    self.graded += 1
                    self._write_gradebook(jobs, payloads)
                if on_result:
                    on_result(job, result)
                bar.update(1)
        finally:
            bar.close()
        self._write_gradebook(jobs, payloads)
        self._write_class_report(jobs)
        return {job.path: payloads[job] for job in jobs if job in payloads}

    def _grade(self, jobs):
        if not jobs:
            return
        if self.workers == 1 or len(jobs) == 1:
            _init_worker(self.limits, self.expected_dir)
            try:
                for job in jobs:
                    yield job, _grade_in_worker(job.path)
            finally:
                _close_worker()
            return
        ctx = multiprocessing.get_context("spawn")
        pool = cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker_process,
                                      initargs=(self.limits, self.expected_dir))
        try:
            futures = {pool.submit(_grade_in_worker, job.path): job for job in jobs}
            for future in cf.as_completed(futures):
                job = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # a worker died: this submission still gets a result
                    result = failed_result(job.path.name, f"the grading worker failed: {type(exc).__name__}: {exc}")
                yield job, result
        except BaseException:  # stopped (KeyboardInterrupt, SystemExit, the generator closed)
            _stop_pool(pool)
            raise
        pool.shutdown(wait=True)

    def _write_class_report(self, jobs):
        """OUT/class.html and class.json, rebuilt from every results folder in OUT (grader.class_files)."""
        from grader import class_files  # imports this module

        try:
            class_files.write(self.out, {job.out: (job.path, job.key) for job in jobs})
        except Exception as exc:  # every results.json is written by now: the class page must not fail the batch
            warnings.warn(f"the class report was not written: {type(exc).__name__}: {exc}", stacklevel=2)

    def _write_gradebook(self, jobs, payloads):
        rows = [dict(payloads[j], submission=str(j.out.relative_to(self.out))) for j in jobs if j in payloads]
        write_atomic(self.out / "gradebook.csv", gradebook_csv(rows))
