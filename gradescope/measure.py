"""Measure what grading one submission costs: wall seconds, CPU seconds and peak memory.

    .venv/bin/python gradescope/measure.py --runs 3 -- ROOT/run_autograder

Runs the command (with the environment given) RUNS times and samples its whole process tree
(grader, kernels) every 0.1 s: CPU seconds are the tree's user+system time, peak memory is the
largest sum of the tree's resident set sizes at one instant. Prints one line per run and the
medians. Not shipped in autograder.zip; docs/DEPLOY.md quotes its figures.
"""

import argparse
import statistics
import subprocess
import sys
import time

import psutil


def sample(root, cpu):
    """One look at `root`'s process tree: each process's CPU seconds go into `cpu` (keyed by pid and
    start time, so a process that has ended keeps its last figure); returns the tree's RSS sum, or
    None once `root` is gone."""
    try:
        tree = [root] + root.children(recursive=True)
    except psutil.NoSuchProcess:
        return None
    rss = 0
    for p in tree:
        try:
            with p.oneshot():
                t = p.cpu_times()
                cpu[(p.pid, p.create_time())] = t.user + t.system
                rss += p.memory_info().rss
        except psutil.Error:
            pass
    return rss


def measure(command, interval=0.1):
    start = time.monotonic()
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    root = psutil.Process(proc.pid)
    cpu, peak = {}, 0
    while proc.poll() is None:
        rss = sample(root, cpu)
        if rss is None:
            break
        peak = max(peak, rss)
        time.sleep(interval)
    proc.wait()
    return {"wall_s": time.monotonic() - start, "cpu_s": sum(cpu.values()), "peak_rss_mib": peak / 2**20,
            "exit": proc.returncode}


def main(argv=None):
    p = argparse.ArgumentParser(prog="gradescope/measure.py", description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("command", nargs="+")
    args = p.parse_args(argv)
    runs = []
    for i in range(args.runs):
        r = measure(args.command)
        runs.append(r)
        print(f"run {i + 1}: wall {r['wall_s']:.1f} s, cpu {r['cpu_s']:.1f} s, peak rss {r['peak_rss_mib']:.0f} MiB, "
              f"exit {r['exit']}", flush=True)
    med = {k: statistics.median(r[k] for r in runs) for k in ("wall_s", "cpu_s", "peak_rss_mib")}
    print(f"median: wall {med['wall_s']:.1f} s, cpu {med['cpu_s']:.1f} s, peak rss {med['peak_rss_mib']:.0f} MiB "
          f"({psutil.cpu_count()} cpus, {psutil.virtual_memory().total / 2**30:.0f} GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
