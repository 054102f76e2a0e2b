"""Command line: `python -m grader grade SUBMISSION... --out DIR` and `python -m grader expected`.

A thin layer: it parses arguments, calls the core, writes files and prints. It
owns the exit status: 0 whenever every results.json was written.
"""

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

from grader import expected as expected_outputs
from grader import report
from grader.errors import GraderError
from grader.grade import failed_result, grade_notebook
from grader.kernel import KernelOptions


def write_atomic(path, text):
    """Write via a temporary file and rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def _parser():
    p = argparse.ArgumentParser(prog="python -m grader", description="Grade ResNet-50 assignment notebooks.")
    sub = p.add_subparsers(dest="command", required=True)
    g = sub.add_parser("grade", help="grade one or more notebooks")
    g.add_argument("submissions", nargs="+", type=Path, help="notebook files")
    g.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    g.add_argument("--expected", type=Path, default=expected_outputs.DEFAULT_DIR, help="expected outputs folder")
    g.add_argument("--cell-timeout", type=float, default=KernelOptions.cell_timeout,
                   help="seconds one measuring cell may run (default: %(default)s)")
    e = sub.add_parser("expected", help="regenerate the expected outputs from solution/")
    e.add_argument("--out", type=Path, default=expected_outputs.DEFAULT_DIR)
    return p


def expand(paths):
    """Folders stand for the notebooks directly inside them, in name order."""
    out = []
    for p in paths:
        out.extend(sorted(p.glob("*.ipynb")) if p.is_dir() else [p])
    return out


def _grade(args):
    try:
        expected = expected_outputs.load_all(args.expected)
        error = ""
    except GraderError as exc:
        expected, error = None, str(exc)
    submissions = expand(args.submissions)
    several = len(submissions) > 1 or any(p.is_dir() for p in args.submissions)
    for submission in submissions:
        out = args.out / submission.stem if several else args.out
        if expected is None:
            result = failed_result(submission.name, f"the grader is not set up: {error}")
        else:
            result = grade_notebook(submission, expected, KernelOptions(cell_timeout=args.cell_timeout))
        write_atomic(out / "results.json", json.dumps(report.gradescope(result), indent=2) + "\n")
        print(report.terminal(result))
        print(f"results: {out / 'results.json'}\n")
    return 0


def _expected(args):
    for path in expected_outputs.generate(args.out):
        print(f"wrote {path}")
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    return {"grade": _grade, "expected": _expected}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
