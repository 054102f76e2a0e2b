"""Grade a class: plan, resume, record each result, the gradebook and the class report.

One batch, two executors: the local pool (grader.local_pool, the default) or a Dask cluster
(grader.dask_pool) grades; either yields each submission's result, and this process alone
writes: each results.json and report.html (grader.record), the manifest, the gradebook and
the class report. A submission whose content, grader and expected outputs are unchanged
since its recorded result is not graded again.
"""

import csv
import hashlib
import io
import json
import signal
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from grader import class_files, leftovers
from grader import expected as expected_outputs
from grader.grade import failed_result
from grader.local_pool import LocalPool
from grader.record import MANIFEST, grader_fingerprint, manifest_entry, read_manifest, submission_key, write_atomic
from grader.record import write_result
from grader.sandbox import Limits

__all__ = ["MANIFEST", "Batch", "Job", "NotGraded", "gradebook_csv", "grader_fingerprint", "plan", "write_atomic"]


@dataclass(frozen=True)
class Job:
    path: Path
    out: Path  # the folder its results.json goes to
    key: str


def plan(paths, out, fingerprint=None):
    """One results folder per submission, named after it; clashing names get a numbered suffix."""
    seen, jobs = {}, []
    fingerprint = fingerprint or grader_fingerprint()
    for p in paths:
        stem = p.stem
        n = seen.get(stem, 0)
        seen[stem] = n + 1
        folder = out / (stem if n == 0 else f"{stem}-{n + 1}")
        jobs.append(Job(p, folder, submission_key(p, fingerprint)))
    return jobs


class NotGraded:
    """The executor of a batch that cannot grade (its expected outputs cannot be loaded): every
    submission gets a result, and a report, saying why."""

    isolation = None
    grade_again = True  # nothing was graded: the next run grades them, even if nothing else changed

    def __init__(self, reason):
        self.reason = reason

    def grade(self, jobs):
        for job in jobs:
            yield job, failed_result(job.path.name, self.reason), None


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


def gradebook_csv(rows):
    """One row per submission, a column per check; after `submission`, the LMS's name, id and late mark
    when a row has them (`student`: ((column, value), ...), grader.lms.Student.columns); last, the notebook
    version it was graded as (a class may mix them; a newer version has no names columns)."""
    lms_columns = list(dict.fromkeys(c for row in rows for c, _ in row.get("student", ())))
    columns = ["submission", "score", "max_score"]
    for row in rows:
        for t in row["tests"]:
            if t["name"] not in columns:
                columns.append(t["name"])
    columns += ["error", "version"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns[:1] + lms_columns + columns[1:])
    for row in rows:
        by = {t["name"]: t["score"] for t in row["tests"]}
        error = (row.get("extra_data") or {}).get("error", "")
        version = ((row.get("extra_data") or {}).get("version") or {}).get("id", "")
        student = dict(row.get("student", ()))
        w.writerow([row["submission"]] + [student.get(c, "") for c in lms_columns]
                   + [row["score"], sum(t["max_score"] for t in row["tests"])]
                   + [by.get(c, "") for c in columns[3:-2]] + [error, version])
    return buf.getvalue()


class Batch:
    """A class's results folder. `executor` grades (default: a LocalPool of `workers` processes
    under `limits`); `expected_dir` is what the results are keyed on."""

    def __init__(self, out, limits=Limits(), workers=None, expected_dir=expected_outputs.DEFAULT_DIR,
                 progress=True, visibility="visible", executor=None, version=None, students=None):
        self.out = Path(out)
        self.students = students or {}  # {results folder name: the LMS's columns for the gradebook} (grader.lms)
        self.visibility = visibility
        self.version = version  # a notebook version forced on every submission; None: each detected
        self.executor = executor or LocalPool(limits, workers, expected_dir, version)
        self.graded = self.total = 0  # submissions with results so far, and in all (for a stopped batch)
        self.expected_dir = expected_dir
        self.progress = progress
        self.manifest_path = self.out / MANIFEST
        self.manifest = read_manifest(self.out)

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

    def record(self, job, result, isolation):
        """Write the submission's results.json and report.html, then its manifest entry (keyed on
        nothing when the executor graded nothing, so that a resume grades it)."""
        payload, text = write_result(job.out, result, self.visibility, isolation)
        key = None if getattr(self.executor, "grade_again", False) else job.key
        self.manifest[str(job.out.relative_to(self.out))] = manifest_entry(job.path, key, text)
        write_atomic(self.manifest_path, json.dumps(self.manifest, indent=1, sort_keys=True))
        return payload

    def run(self, paths, on_result=None):
        """Grade every submission; return {submission path: results.json payload}.

        Ctrl-C or SIGTERM (raised here as KeyboardInterrupt) stops the workers and their kernels
        within seconds and propagates; so does an executor's error (a lost cluster). What was
        recorded stays, with the gradebook and class report of it, and `graded` says how much.
        """
        leftovers.remove_stale()
        jobs = plan(paths, self.out, grader_fingerprint(self.expected_dir) + (self.version or ""))
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
            for job, result, isolation in self.executor.grade(todo):
                with _signals_held():  # a stop waits until this submission's files are all written
                    payloads[job] = self.record(job, result, isolation)
                    self.graded += 1
                    self._write_gradebook(jobs, payloads)
                if on_result:
                    on_result(job, result)
                bar.update(1)
        except Exception:  # the executor failed (a lost cluster): the class report of what was graded, then up
            self._write_class_report(jobs)
            raise
        finally:
            bar.close()
        self._write_gradebook(jobs, payloads)
        self._write_class_report(jobs)
        return {job.path: payloads[job] for job in jobs if job in payloads}

    def _write_class_report(self, jobs):
        """OUT/class.html and class.json, rebuilt from every results folder in OUT (grader.class_files)."""
        try:
            class_files.write(self.out, {job.out: (job.path, job.key) for job in jobs})
        except Exception as exc:  # every results.json is written by now: the class page must not fail the batch
            warnings.warn(f"the class report was not written: {type(exc).__name__}: {exc}", stacklevel=2)

    def _write_gradebook(self, jobs, payloads):
        rows = [dict(payloads[j], submission=str(j.out.relative_to(self.out)),
                     student=self.students.get(str(j.out.relative_to(self.out)), ())) for j in jobs if j in payloads]
        write_atomic(self.out / "gradebook.csv", gradebook_csv(rows))
