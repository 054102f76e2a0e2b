"""`make bench`: the grader's latency and throughput beside the floor and full execution, in one run.

(a) floor: a bare process that imports TensorFlow and builds and runs the grader's models.
(b) one grade: `python -m grader grade` of one correct submission, with the kernel in bubblewrap
    (the default) and, side by side, under the isolation used before it (namespaces: `unshare`
    as root; none otherwise), runs interleaved so both see the same machine.
(c) full execution: `jupyter nbconvert --execute` of the same notebook, training cut to 1 epoch;
    the figure for 10 epochs is projected from the training cell's own time.
(d) a batch of N generated submissions (correct and mistaken) with the default workers.
(e) before / after: one grade and a batch of distinct submissions graded by a baseline commit's grader
    and by this tree's, alternating, with their results compared; then where one grade's time goes,
    phase by phase, before and after (bench/before_after.py, bench/phases.py).
(f) the same batch on a Dask cluster of as many workers (scheduler and workers: separate
    processes on 127.0.0.1, started before the clock), right after (d).
Medians of --repeat runs where a row is repeated. Prints figures, then ratios. Asserts nothing.
"""

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nbformat
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

from grader.native_logs import filtered_stderr  # noqa: E402

with filtered_stderr():  # this process imports TensorFlow (through the corpus): drop its C++ start-up lines
    import corpus  # noqa: E402
    import notebooks  # noqa: E402
from grader.batch import Batch  # noqa: E402
import before_after  # noqa: E402
from memory import PeakPerWorker  # noqa: E402
import phases  # noqa: E402
from grader.sandbox import Limits  # noqa: E402

PY = sys.executable
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))


def timed(cmd, env=None, **kw):
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env or ENV, cwd=ROOT,
                   **kw)
    return time.perf_counter() - start


def floor(repeat):
    return [timed([PY, str(ROOT / "bench" / "floor.py")]) for _ in range(repeat)]


def one_grade(path, repeat, tmp, levels):
    """{isolation level: [seconds per run]}, the levels' runs interleaved."""
    runs = {level: [] for level in levels}
    for i in range(repeat):
        for level in levels:
            env = dict(ENV, GRADER_ISOLATION=level)
            runs[level].append(timed([PY, "-m", "grader", "grade", str(path), "--out", str(tmp / f"one-{level}-{i}")],
                                     env=env))
    return runs


def isolation_levels():
    """(before, after): what kernels ran under before bubblewrap, and the default now."""
    from grader.sandbox import Limits, resolve

    after = resolve(Limits()).isolation
    before = "namespaces" if resolve(Limits(isolation="namespaces")) else "none"
    return before, after


def full_execution(tmp):
    """nbconvert --execute, top to bottom, with the training cut to 1 epoch; returns (seconds, training cell seconds)."""
    if not (ROOT / "data" / "signs" / "train_signs.h5").exists():
        subprocess.run([PY, "-m", "signs.make_data", "data/signs"], check=True, cwd=ROOT, env=ENV,
                       stdout=subprocess.DEVNULL)
    nb = notebooks.solved()
    for cell in nb.cells:
        if "EPOCHS = RECIPE.epochs" in cell.source:
            cell.source = cell.source.replace("EPOCHS = RECIPE.epochs", "EPOCHS = 1")
    path = ROOT / "assignment" / "_bench_full_execution.ipynb"
    nbformat.write(nb, str(path))
    out = tmp / "executed.ipynb"
    try:
        seconds = timed([str(Path(PY).parent / "jupyter"), "nbconvert", "--to", "notebook", "--execute",
                         "--ExecutePreprocessor.timeout=3600", "--ExecutePreprocessor.kernel_name=python3",
                         str(path), "--output", str(out)])
    finally:
        path.unlink(missing_ok=True)
    executed = nbformat.read(str(out), as_version=4)
    train = next(c for c in executed.cells if "model.fit(" in c.source)
    t = train.metadata.get("execution", {})
    start, end = t.get("iopub.execute_input"), t.get("shell.execute_reply")
    parse = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731
    epoch = (parse(end) - parse(start)).total_seconds() if start and end else float("nan")
    return seconds, epoch


def generated_class(n, folder):
    """N submissions: every other one correct, the rest each with one corpus mistake."""
    folder.mkdir(parents=True)
    mistakes = list(corpus.MISTAKES)
    for i in range(n):
        if i % 2 == 0:
            nb = notebooks.solved()
        else:
            m = mistakes[(i // 2) % len(mistakes)]
            nb = notebooks.solved(**{m.function: m.source()})
        notebooks.write(nb, folder / f"student{i:03d}.ipynb")
    return sorted(folder.glob("*.ipynb"))


def batch(paths, tmp, workers):
    with PeakPerWorker() as mem:
        start = time.perf_counter()
        results = Batch(tmp / f"batch-{workers}", Limits(), workers, progress=False).run(paths)
        seconds = time.perf_counter() - start
    return seconds, (mem.peak_rss, mem.peak_pss), results


def dask_batch(paths, tmp, workers):
    """(e): (seconds, results) of the batch on a local Dask cluster of `workers` one-thread workers."""
    import socket

    from grader.dask_pool import DaskPool

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    dask = str(Path(PY).parent / "dask")
    run = lambda *args: subprocess.Popen([dask, *args, "--no-dashboard"], cwd=tmp, env=ENV, start_new_session=True,  # noqa: E731
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [run("scheduler", "--host", "127.0.0.1", "--port", str(port))]
    procs += [run("worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1") for _ in range(workers)]
    try:
        from distributed import Client

        with Client(address, timeout=60, set_as_default=False) as c:
            c.wait_for_workers(workers, timeout=120)
        start = time.perf_counter()
        results = Batch(tmp / "dask", progress=False, executor=DaskPool(address, Limits(), say=lambda line: None)).run(paths)
        return time.perf_counter() - start, results
    finally:
        for p in procs[::-1]:
            os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("-n", type=int, default=20, help="submissions in the batch (d)")
    p.add_argument("--check", type=int, default=4, help="submissions also graded one worker at a time, to compare")
    p.add_argument("--skip-full", action="store_true", help="skip row (c), which takes minutes")
    p.add_argument("--quick", action="store_true", help="rows (a) and (b) only: the sandbox's cost in a few minutes")
    p.add_argument("--baseline", default=before_after.BASELINE, help="the commit graded as 'before' in (e)")
    p.add_argument("--e-n", type=int, default=12, help="submissions in (e)'s batch")
    p.add_argument("--skip-e", action="store_true", help="skip (e), before / after")
    args = p.parse_args(argv)
    before, after = isolation_levels()
    tmp = Path(tempfile.mkdtemp(prefix="bench-"))
    try:
        solved = notebooks.write(notebooks.solved(), tmp / "solved.ipynb")
        a = floor(args.repeat)
        grades = one_grade(solved, args.repeat, tmp, (before, after) if before != after else (after,))
        b = grades[after]
        c = None if args.skip_full or args.quick else full_execution(tmp)
        workers = os.cpu_count()
        if not args.quick:
            paths = generated_class(args.n, tmp / "class")
            d_seconds, d_peak, d_results = batch(paths, tmp, workers)
            sequential = Batch(tmp / "sequential", Limits(), 1, progress=False).run(paths[: args.check])
            timeless = lambda r: {k: v for k, v in r.items() if k != "execution_time"}  # noqa: E731
            same = all(timeless(sequential[q]) == timeless(d_results[q]) for q in sequential)
            f_seconds, f_results = dask_batch(paths, tmp, workers)
            f_same = all(timeless(f_results[q]) == timeless(d_results[q]) for q in d_results)
        e = None
        if not (args.quick or args.skip_e):
            folder = before_after.distinct_class(args.e_n, tmp / "distinct")
            e = before_after.compare(solved, folder, tmp, ENV, repeat=max(1, min(args.repeat, 2)),
                                     baseline=args.baseline)
            e_phases = phases.table(phases.measure(args.repeat, args.baseline))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = statistics.median
    a_m, b_m = med(a), med(b)
    cpu = psutil.cpu_count()
    print(f"machine: {cpu} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GiB, Python {sys.version.split()[0]}")
    print()
    print(f"{'row':<44}{'median s':>10}   runs")
    print(f"{'(a) floor: import TF, build + run the models':<44}{a_m:>10.2f}   {', '.join(f'{x:.1f}' for x in a)}")
    for level, runs in grades.items():
        label = f"(b) one grade, kernel isolation: {level}"
        print(f"{label:<44}{med(runs):>10.2f}   {', '.join(f'{x:.1f}' for x in runs)}")
    if c:
        total, epoch = c
        projected = total + 9 * epoch
        print(f"{'(c) nbconvert --execute, 1 epoch':<44}{total:>10.2f}   training cell {epoch:.1f} s")
        print(f"{'(c) projected for 10 epochs':<44}{projected:>10.2f}")
    if not args.quick:
        per = d_seconds / args.n
        print(f"{f'(d) batch of {args.n}, {workers} workers: total':<44}{d_seconds:>10.2f}")
        print(f"{'(d) per submission':<44}{per:>10.2f}")
        print(f"{'(d) peak memory per worker, PSS (GiB)':<44}{d_peak[1] / 2**30:>10.2f}")
        print(f"{'(d) peak memory per worker, RSS sum (GiB)':<44}{d_peak[0] / 2**30:>10.2f}")
        print(f"{'(d) batch results = one-at-a-time results':<44}{'yes' if same else 'NO':>10}   ({args.check} compared)")
        print(f"{f'(f) the batch on Dask, {workers} workers: total':<44}{f_seconds:>10.2f}")
        print(f"{'(f) per submission':<44}{f_seconds / args.n:>10.2f}")
        print(f"{'(f) Dask results = local pool results':<44}{'yes' if f_same else 'NO':>10}   ({len(d_results)} compared)")
    if e:
        print()
        print("\n".join(before_after.report(e, a_m)))
        print()
        print("\n".join(e_phases))
    print()
    print("ratios (goals: b/a <= 1.5, d/a <= 1.0 per submission, memory (PSS) <= 1.5 GiB per worker)")
    for level, runs in grades.items():
        print(f"  (b) / (a), isolation {level + ':':<12}{med(runs) / a_m:6.2f}")
    if not args.quick:
        print(f"  (d) per submission / (a)  {per / a_m:6.2f}")
        print(f"  (f) Dask / (d) local pool {f_seconds / d_seconds:6.2f}   (goal <= 1.10)")
    if c:
        print(f"  (c) 10 epochs / (b)       {projected / b_m:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
