"""`make bench`, per notebook version: its floor, one grade of its correct notebook, and a batch of a
class mixing the versions, side by side in one run (medians of --repeat). Asserts nothing.

The floor of a version (bench/floor.py VERSION) imports TensorFlow and builds and runs its
reference's models in each mode as the version runs them; one grade is `python -m grader grade`
of a correct notebook of that version (the course's import cell for the newer ones).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from grader import versions  # noqa: E402

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, env=ENV, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def correct_notebook(version, path):
    import notebooks
    from corpus_versions import BASE
    from test_versions import _notebook

    nb = notebooks.solved() if version == versions.DEFAULT else _notebook(version, BASE[version].values())
    return notebooks.write(nb, path)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--per-version", type=int, default=4, help="notebooks of each version in the mixed batch")
    args = p.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        paths = {v: correct_notebook(v, tmp / f"{v}.ipynb") for v in versions.ids()}
        for _ in range(args.repeat):  # interleaved, so every version sees the same machine
            for v in versions.ids():
                rows.setdefault(v, {"floor": [], "grade": []})
                rows[v]["floor"].append(timed([sys.executable, str(ROOT / "bench" / "floor.py"), v]))
                rows[v]["grade"].append(timed([sys.executable, "-m", "grader", "grade", str(paths[v]),
                                               "--out", str(tmp / f"out-{v}")]))
        folder = tmp / "class"
        folder.mkdir()
        for v, path in paths.items():
            for i in range(args.per_version):
                (folder / f"{v}-{i}.ipynb").write_bytes(path.read_bytes())
        n = len(list(folder.glob("*.ipynb")))
        batch = timed([sys.executable, "-m", "grader", "grade", str(folder), "--out", str(tmp / "out-class"),
                       "--no-progress"])
    print(f"{'version':10} {'floor s':>9} {'grade s':>9} {'grade/floor':>12}")
    floors = []
    for v, r in rows.items():
        floor, grade = statistics.median(r["floor"]), statistics.median(r["grade"])
        floors.append(floor)
        print(f"{v:10} {floor:9.2f} {grade:9.2f} {grade / floor:12.2f}")
    per = batch / n
    print(f"mixed batch: {n} notebooks ({args.per_version} per version) in {batch:.1f} s, {per:.2f} s each, "
          f"{per / statistics.median(floors):.2f} x the median floor")


if __name__ == "__main__":
    main()
