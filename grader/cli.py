"""Command line: `python -m grader` (or `resnet-grader`) grade, class and expected.

A thin layer: it parses arguments, calls the core, writes files and prints. It
owns the exit status: 0 whenever every results.json was written.
"""

import argparse
import sys
from pathlib import Path

from grader import sandbox
from grader import visibility as test_visibility
from grader.errors import GraderError
from grader.kernel import Kernel
from grader.sandbox import Limits

# The rest of the grader is imported after the kernel has been started (see _grade): one grade's
# critical path is the kernel's TensorFlow import, so it should begin as early as it can.
EXPECTED_DIR = Path(__file__).parent / "expected"


# One example per subcommand, shown by --help.
EXAMPLES = {
    "grade": "grade submissions/ --out results/hw3",
    "class": "class results/hw3",
    "expected": "expected",
}


def _prog():
    """The name the grader was started by: the console script, or `python -m grader`."""
    name = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    return "resnet-grader" if name == "resnet-grader" else "python -m grader"


def _parser():
    prog = _prog()
    examples = "\n".join(f"  {prog} {line}" for line in EXAMPLES.values())
    p = argparse.ArgumentParser(prog=prog, description="Grade ResNet-50 assignment notebooks.",
                                epilog=f"examples:\n{examples}", formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="{grade,class,expected}")

    def command(name, text):
        return sub.add_parser(name, help=text, description=text,
                              epilog=f"example:\n  {prog} {EXAMPLES[name]}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    g = command("grade", "grade one or more notebooks, or every notebook in a folder")
    g.add_argument("submissions", nargs="+", type=Path, help="notebook files")
    g.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    g.add_argument("--expected", type=Path, default=EXPECTED_DIR, help="expected outputs folder")
    g.add_argument("--function-timeout", type=float, default=Limits.function_timeout,
                   help="seconds one graded function's measurement may take (default: %(default)s)")
    g.add_argument("--submission-timeout", type=float, default=Limits.submission_timeout,
                   help="seconds one submission may take in all (default: %(default)s)")
    g.add_argument("--memory", type=float, default=Limits.memory / 2**30,
                   help="GiB of memory a submission's kernel may use (default: %(default)s)")
    g.add_argument("--workers", type=int, default=None,
                   help="submissions graded at once in a batch (default: the number of CPUs)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--run-as", default="", metavar="USER",
                   help="hardened mode, when grading as root: run kernels as this unprivileged user, which must "
                        "not be able to read solution/ or the expected outputs (see the README)")
    g.add_argument("--visibility", type=Path, default=test_visibility.DEFAULT_FILE,
                   help="JSON file of Gradescope visibility per test (default: grader/visibility.json)")
    c = command("class", "rebuild OUT/class.html and OUT/class.json from a folder of batch results")
    c.add_argument("out", type=Path, metavar="OUT", help="the results folder a batch wrote (grade ... --out OUT)")
    c.add_argument("--template", type=Path, default=None,
                   help="the assignment notebook, whose untouched stubs are not compared as answers "
                        "(default: assignment/ResNets.ipynb beside the grader, when there is one)")
    e = command("expected", "regenerate the expected outputs from solution/")
    e.add_argument("--out", type=Path, default=EXPECTED_DIR)
    return p


def expand(paths):
    """Folders stand for the notebooks directly inside them, in name order."""
    out = []
    for p in paths:
        out.extend(sorted(p.glob("*.ipynb")) if p.is_dir() else [p])
    return out


def limits_from(args):
    return Limits(function_timeout=args.function_timeout, submission_timeout=args.submission_timeout,
                  memory=int(args.memory * 2**30), run_as=args.run_as)


def hardened_problems(args):
    """Why hardened mode cannot run as asked, or '' when it can."""
    if not args.run_as:
        return ""
    import os
    import pwd

    try:
        pwd.getpwnam(args.run_as)
    except KeyError:
        return f"--run-as: there is no user {args.run_as!r}"
    if os.geteuid() != 0:
        return "--run-as needs the grader to run as root"
    exposed = sandbox.readable_by_others([Path(__file__).parent.parent / "solution", Path(args.expected)])
    if exposed:
        return (f"--run-as: {len(exposed)} files of the solution or expected outputs are readable by other users "
                f"(e.g. {exposed[0]}); run `chmod -R o-rwx solution {args.expected}` first")
    return ""


def _grade(args):
    try:
        shown = test_visibility.load(args.visibility)
    except GraderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    problem = hardened_problems(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    submissions = expand(args.submissions)
    if len(submissions) > 1 or any(p.is_dir() for p in args.submissions):
        return _grade_batch(args, submissions, shown)
    limits = limits_from(args)
    kernel = Kernel(limits)  # starts now, so it warms up while the rest of the grader loads
    kernels = [kernel]
    from grader import expected as expected_outputs
    from grader import html_report, report
    from grader.batch import write_atomic
    from grader.grade import failed_result, grade_notebook

    try:
        expected = expected_outputs.load_all(args.expected)
        result = grade_notebook(submissions[0], expected, limits, lambda: kernels.pop() if kernels else Kernel(limits))
    except GraderError as exc:
        result = failed_result(submissions[0].name, f"the grader is not set up: {exc}")
    except Exception as exc:  # a grader bug must still leave a results.json that says so
        result = failed_result(submissions[0].name, f"internal grader error: {type(exc).__name__}: {exc}")
    finally:
        for k in kernels:
            k.close()
    write_atomic(args.out / "results.json", report.results_json(report.gradescope(result, shown)))
    write_atomic(args.out / "report.html", html_report.render(result))
    print(report.terminal(result))
    print(f"results: {args.out / 'results.json'}")
    return 0


def _grade_batch(args, submissions, shown):
    from grader import expected as expected_outputs
    from grader import report
    from grader.batch import Batch, write_atomic
    from grader.grade import failed_result
    try:
        expected_outputs.load_all(args.expected)
    except GraderError as exc:
        for s in submissions:
            result = failed_result(s.name, f"the grader is not set up: {exc}")
            write_atomic(args.out / s.stem / "results.json", report.results_json(report.gradescope(result)))
        print(f"Grading failed: {exc}")
        return 0
    batch = Batch(args.out, limits_from(args), args.workers, args.expected, progress=not args.no_progress,
                  visibility=shown)
    payloads = batch.run(submissions)
    width = max([len(p.name) for p in payloads] + [10])
    print("submission".ljust(width), "score".rjust(8))
    for path, payload in payloads.items():
        print(path.name.ljust(width), f"{payload['score']:g}".rjust(8))
    print(f"results: {args.out}/<submission>/results.json; gradebook: {args.out / 'gradebook.csv'}; "
          f"class report: {args.out / 'class.html'}")
    return 0


def _expected(args):
    from grader import expected as expected_outputs
    for path in expected_outputs.generate(args.out):
        print(f"wrote {path}")
    return 0


def _class(args):
    from grader import class_files
    if not any(args.out.glob("*/results.json")):
        print(f"error: {args.out} holds no <submission>/results.json: grade a folder with --out {args.out} first",
              file=sys.stderr)
        return 2
    if args.template is not None and not args.template.is_file():
        print(f"error: --template: no such file {args.template}", file=sys.stderr)
        return 2
    figures_path, page = class_files.write(args.out, template=args.template or class_files.TEMPLATE)
    print(f"class report: {page}; figures: {figures_path}")
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    return {"grade": _grade, "class": _class, "expected": _expected}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
