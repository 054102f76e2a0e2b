"""The grader of a baseline commit beside this tree's, in one run: one grade, a batch, their results.

Each side runs `python -m grader grade` from its own tree (the baseline exported with `git archive`),
with the same interpreter and the default isolation; runs alternate (before, after, before, after)
so both see the same machine. The batch's results.json files of both sides are compared, timings aside.
"""

import json
import subprocess
import time
from pathlib import Path

from memory import PeakPerWorker

ROOT = Path(__file__).resolve().parent.parent
# The last commit before issue 22's caps per kernel (one cgroup, session and process cap each).
BASELINE = "88f668b"


def export_tree(rev, folder):
    """The files of commit `rev` in `folder` (a plain copy, no git)."""
    archive = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, check=True, capture_output=True).stdout
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)  # git's own archive: trusted
    return folder


def grade(tree, target, out, env):
    """Seconds `python -m grader grade TARGET --out OUT` takes, run from `tree`."""
    import sys

    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "grader", "grade", str(target), "--out", str(out)], cwd=tree, check=True,
                   env=dict(env, PYTHONPATH=str(tree)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def timeless(path):
    result = json.loads(path.read_text())
    result.pop("execution_time", None)
    return result


def shared(a, b):
    """`a` and `b` cut to the keys both have, at every level: a baseline from before results.json gained
    fields (issue 17's findings, limits, error kinds) is compared on everything it records."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [k for k in a if k in b]
        pairs = [shared(a[k], b[k]) for k in keys]
        return dict(zip(keys, (x for x, _ in pairs))), dict(zip(keys, (y for _, y in pairs)))
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        pairs = [shared(x, y) for x, y in zip(a, b)]
        return [x for x, _ in pairs], [y for _, y in pairs]
    return a, b


def same_results(out_a, out_b, names):
    """How many of the notebooks' results.json are equal on both sides, timings aside, on every field
    both sides record (a list of another length, or a value that differs, is a difference)."""
    equal = 0
    for n in names:
        a, b = shared(timeless(out_a / n / "results.json"), timeless(out_b / n / "results.json"))
        equal += a == b
    return equal


def compare(single, folder, tmp, env, repeat=2, baseline=BASELINE):
    """{"one": {side: [s]}, "batch": {side: [s]}, "pss"/"rss": {side: peak bytes}, "same": (equal, compared)}."""
    trees = {"before": export_tree(baseline, tmp / "baseline"), "after": ROOT}
    names = sorted(p.stem for p in Path(folder).glob("*.ipynb"))
    out = {"one": {k: [] for k in trees}, "batch": {k: [] for k in trees}, "pss": {}, "rss": {}}
    for i in range(repeat):
        for side, tree in trees.items():
            out["one"][side].append(grade(tree, single, tmp / f"one-{side}-{i}", env))
    for i in range(repeat):
        for side, tree in trees.items():
            with PeakPerWorker(depth=2) as mem:
                out["batch"][side].append(grade(tree, folder, tmp / f"batch-{side}-{i}", env))
            out["pss"][side] = max(out["pss"].get(side, 0), mem.peak_pss)
            out["rss"][side] = max(out["rss"].get(side, 0), mem.peak_rss)
    out["same"] = (same_results(tmp / "batch-before-0", tmp / "batch-after-0", names), len(names))
    out["n"] = len(names)
    out["baseline"] = baseline
    return out


def distinct_class(n, folder):
    """N distinct submissions: correct ones (the corpus's equivalent answers) alternating with mistaken ones."""
    import corpus
    import notebooks

    folder.mkdir(parents=True)
    for i in range(n):
        pool = corpus.EQUIVALENTS if i % 2 == 0 else corpus.MISTAKES
        v = pool[(i // 2) % len(pool)]
        notebooks.write(notebooks.solved(**{v.function: v.source()}), folder / f"student{i:03d}.ipynb")
    return folder


def report(result, floor_median):
    """The rows and ratios, as text lines."""
    import statistics

    med = statistics.median
    lines = [f"{'before / after (baseline ' + result.get('baseline', BASELINE) + ', runs alternating)':<44}"
             f"{'before':>10}{'after':>10}"]
    one = {k: med(v) for k, v in result["one"].items()}
    per = {k: med(v) / result["n"] for k, v in result["batch"].items()}
    lines.append(f"{'(e) one grade (s)':<44}{one['before']:>10.2f}{one['after']:>10.2f}")
    label = f"(e) batch of {result['n']}, per submission (s)"
    lines.append(f"{label:<44}{per['before']:>10.2f}{per['after']:>10.2f}")
    for key, label in (("pss", "PSS"), ("rss", "RSS sum")):
        lines.append(f"{f'(e) peak memory per worker, {label} (GiB)':<44}"
                     f"{result[key]['before'] / 2**30:>10.2f}{result[key]['after'] / 2**30:>10.2f}")
    lines.append(f"{'(e) one grade / floor':<44}{one['before'] / floor_median:>10.2f}{one['after'] / floor_median:>10.2f}")
    lines.append(f"{'(e) batch per submission / floor':<44}{per['before'] / floor_median:>10.2f}"
                 f"{per['after'] / floor_median:>10.2f}")
    equal, compared = result["same"]
    lines.append(f"(e) results.json the same before and after, timings aside, on every field both record: "
                 f"{equal} of {compared}")
    return lines
