"""Command line: `python -m grader` (or `resnet-grader`) grade, class, export and expected.

A thin layer: it parses arguments, calls the core, writes files and prints. It
owns the exit status: 0 whenever every results.json was written.
"""

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from grader import sandbox, versions
from grader import visibility as test_visibility
from grader.errors import GraderError
from grader.kernel import kill_all
from grader.pool import WarmKernels
from grader.sandbox import Limits

# The rest of the grader is imported after the kernel has been started (see _grade): one grade's
# critical path is the kernel's TensorFlow import, so it should begin as early as it can.
EXPECTED_DIR = Path(__file__).parent / "expected"


# One example per subcommand, shown by --help.
EXAMPLES = {
    "grade": "grade submissions/ --out results/hw3",
    "class": "class results/hw3",
    "export": "export results/hw3 --canvas gradebook.csv --to canvas-import.csv",
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
    sub = p.add_subparsers(dest="command", required=True, metavar="{grade,class,export,expected}")

    def command(name, text):
        return sub.add_parser(name, help=text, description=text,
                              epilog=f"example:\n  {prog} {EXAMPLES[name]}",
                              formatter_class=argparse.RawDescriptionHelpFormatter)

    g = command("grade", "grade one or more notebooks, every notebook in a folder, or a Canvas or Moodle download")
    g.add_argument("submissions", nargs="+", type=Path,
                   help="notebook files, folders, or the zip Canvas or Moodle downloads (or its folder; "
                        "see docs/LMS.md)")
    g.add_argument("--out", type=Path, default=Path("results"), help="results folder (default: results)")
    g.add_argument("--expected", type=Path, default=EXPECTED_DIR, help="expected outputs folder")
    g.add_argument("--notebook-version", choices=versions.ids(), default=None,
                   help="grade every notebook as this version of the assignment (default: each notebook's own, "
                        "told from its functions' signatures)")
    g.add_argument("--function-timeout", type=float, default=Limits.function_timeout,
                   help="seconds one graded function's measurement may take (default: %(default)s)")
    g.add_argument("--submission-timeout", type=float, default=Limits.submission_timeout,
                   help="seconds one submission may take in all (default: %(default)s)")
    g.add_argument("--memory", type=float, default=Limits.memory / 2**30,
                   help="GiB of memory a submission's kernel may use (default: %(default)s)")
    g.add_argument("--workers", type=int, default=None,
                   help="submissions graded at once in a batch by the local pool (default: the number of CPUs)")
    g.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="grade on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://10.0.0.5:8786); "
                        "each worker needs only `dask worker ADDRESS` where the grader is installed (see docs/DEPLOY.md)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--run-as", default="", metavar="USER",
                   help="hardened mode, when grading as root: run kernels as this unprivileged user, which must "
                        "not be able to read solution/ or the expected outputs (see the README)")
    g.add_argument("--isolation", choices=("auto", *sandbox.LEVELS), default=os.environ.get("GRADER_ISOLATION", "auto"),
                   help="how kernels are isolated: auto (default; $GRADER_ISOLATION overrides it) takes the "
                        "strongest that works here: bubblewrap, then namespaces, then none (see the README)")
    g.add_argument("--visibility", type=Path, default=test_visibility.DEFAULT_FILE,
                   help="JSON file of Gradescope visibility per test (default: grader/visibility.json)")
    c = command("class", "rebuild OUT/class.html and OUT/class.json from a folder of batch results")
    c.add_argument("out", type=Path, metavar="OUT", help="the results folder a batch wrote (grade ... --out OUT)")
    c.add_argument("--template", type=Path, default=None,
                   help="the assignment notebook, whose untouched stubs are not compared as answers "
                        "(default: every notebook version's, assignment/ResNets.ipynb and assignment/*/*.ipynb "
                        "beside the grader, when they are there)")
    x = command("export", "write the grades and feedback of an LMS download's results into the LMS's import file")
    x.add_argument("out", type=Path, metavar="OUT", help="the results folder `grade DOWNLOAD.zip --out OUT` wrote")
    lms_file = x.add_mutually_exclusive_group(required=True)
    lms_file.add_argument("--canvas", type=Path, metavar="GRADEBOOK.csv", help="the gradebook exported from Canvas")
    lms_file.add_argument("--moodle", type=Path, metavar="WORKSHEET.csv", help="the grading worksheet from Moodle")
    x.add_argument("--to", type=Path, required=True, metavar="FILE", help="the file to write, for the LMS to import")
    x.add_argument("--column", default=None, metavar="NAME",
                   help="Canvas: the assignment's column (its header, name or id; default: the only assignment)")
    x.add_argument("--feedback-zip", type=Path, default=None, metavar="FILE",
                   help="Moodle: also write each student's report.html in a zip for 'Upload multiple feedback files'")
    x.add_argument("--missing", choices=("empty", "zero"), default="empty",
                   help="what a student on the roster without a graded submission gets: their cell as exported "
                        "(empty, the default) or 0")
    e = command("expected", "regenerate the expected outputs of every notebook version from its reference in solution/")
    e.add_argument("--out", type=Path, default=EXPECTED_DIR)
    e.add_argument("--notebook-version", choices=versions.ids(), default=None, help="only this version's")
    return p


def expand(paths):
    """Folders stand for the notebooks directly inside them, in name order."""
    out = []
    for p in paths:
        out.extend(sorted(p.glob("*.ipynb")) if p.is_dir() else [p])
    return out


def limits_from(args, submissions=()):
    """The kernels' limits; they must not see the submissions, the results or the expected outputs."""
    hide = {str(Path(p).resolve().parent) for p in submissions} | {str(args.out.resolve()), str(args.expected.resolve())}
    return Limits(function_timeout=args.function_timeout, submission_timeout=args.submission_timeout,
                  memory=int(args.memory * 2**30), run_as=args.run_as, isolation=args.isolation,
                  hide=tuple(sorted(hide)))


def resolved_limits(args, submissions):
    """The limits with the isolation this machine allows, or None (said on stderr) when there is none."""
    from grader import leftovers

    leftovers.remove_stale()  # the folders of a grader run that was killed
    wanted = limits_from(args, submissions)
    limits = sandbox.resolve(wanted)  # raises leftovers.NoRoom where no kernel can have a folder
    if limits is None:
        who = f"; can user {wanted.run_as} read this interpreter and its packages?" if wanted.run_as else ""
        print(f"error: no kernel can be started with --isolation {wanted.isolation} here{who}", file=sys.stderr)
        return None
    warning = sandbox.describe(limits)[1]
    if warning:
        print(warning, file=sys.stderr)
    return limits


class _Stopped:
    """While grading: SIGTERM stops the grader as Ctrl-C does (KeyboardInterrupt); `signum` says which came.

    `requested` stays set after the KeyboardInterrupt, because library code between here and the
    kernel (an event loop, a socket poll) may swallow it: the grader checks it again before it
    starts a kernel or writes a result, so a stopped grade never goes on to the end.
    """

    signum = signal.SIGINT
    requested = 0

    def __enter__(self):
        self.previous = {}
        _Stopped.signum, _Stopped.requested = signal.SIGINT, 0
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGINT):
                if signal.getsignal(signum) is not signal.SIG_IGN:  # a background job keeps ignoring Ctrl-C
                    self.previous[signum] = signal.signal(signum, self._raise)
        return self

    def _raise(self, signum, frame):
        _Stopped.signum = _Stopped.requested = signum
        raise KeyboardInterrupt

    @staticmethod
    def check():
        """Raise KeyboardInterrupt if a stop was asked for (and perhaps swallowed)."""
        if _Stopped.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)


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
    submissions, students = _submissions(args)
    if submissions is None:
        return 2
    if args.scheduler:
        if args.expected.resolve() != EXPECTED_DIR.resolve():
            print("error: --expected cannot be used with --scheduler: each worker grades with the expected outputs "
                  "installed with its grader", file=sys.stderr)
            return 2
        with _Stopped():
            return _grade_batch(args, submissions, shown, limits_from(args, submissions), students)
    from grader.leftovers import NoRoom
    try:
        limits = resolved_limits(args, submissions)
    except NoRoom as exc:  # nothing can be graded here: each submission's result says why
        print(f"error: {exc}", file=sys.stderr)
        _record_failures(args, submissions, str(exc), shown, students)
        return 0
    if limits is None:
        return 2
    with _Stopped():
        if students is not None or len(submissions) > 1 or any(p.is_dir() for p in args.submissions):
            return _grade_batch(args, submissions, shown, limits, students)
        try:
            return _grade_one(args, submissions[0], shown, limits)
        except KeyboardInterrupt:
            # the interrupted cell's task ends with the kernel it ran on: not an error worth a traceback
            logging.getLogger("asyncio").setLevel(logging.CRITICAL)
            kill_all()
            print(f"stopped ({signal.Signals(_Stopped.signum).name}): {submissions[0]} was not graded; "
                  "run the same command again to grade it", file=sys.stderr)
            return 128 + _Stopped.signum


def _submissions(args):
    """(the notebooks to grade, None), or, for a Canvas or Moodle download, (its students' notebooks staged in
    OUT, {results folder: their LMS columns}) (grader.lms_files); (None, None) when none can be graded."""
    from grader import lms_files

    if not any(lms_files.is_download(p) for p in args.submissions):
        return expand(args.submissions), None
    try:
        gathered = lms_files.gather(args.submissions, args.out)
    except OSError as exc:  # the results folder cannot be written
        print(f"error: cannot write {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return None, None
    for line in gathered.lines:
        print(line, file=sys.stderr)
    if not gathered.notebooks:
        print(f"error: no notebook in {', '.join(map(str, args.submissions))} could be placed; "
              f"what was left out, and why: {args.out / lms_files.UNPLACED}", file=sys.stderr)
        return None, None
    return gathered.notebooks, gathered.columns


def _record_failures(args, submissions, why, shown, students=None):
    """Grading cannot start at all: every submission still gets its results.json and report, saying why."""
    from grader.batch import Batch, NotGraded
    from grader.grade import failed_result
    from grader.record import write_result

    if students is not None or len(submissions) > 1 or any(p.is_dir() for p in args.submissions):
        Batch(args.out, expected_dir=args.expected, progress=False, visibility=shown,
              executor=NotGraded(why), students=students).run(submissions)
    elif submissions:
        write_result(args.out, failed_result(submissions[0].name, why), shown)


def _grade_one(args, submission, shown, limits):
    pool = WarmKernels(limits, ahead=0)  # one kernel at a time: from a zygote, a kernel after a crash is quick
    try:
        kernels = [pool.new()]  # starts now, so it warms up while the rest of the grader loads
    except Exception:  # it fails again inside grading, which turns the reason into the result
        kernels = []
    from grader import expected as expected_outputs
    from grader import report
    from grader.grade import failed_result, grade_notebook
    from grader.record import write_result

    def next_kernel():
        _Stopped.check()
        return kernels.pop() if kernels else pool.new()

    try:
        expected = expected_outputs.load_versions(args.expected, lazy=True)
        result = grade_notebook(submission, expected, limits, next_kernel, args.notebook_version)
    except GraderError as exc:
        result = failed_result(submission.name, f"the grader is not set up: {exc}")
    except Exception as exc:  # a grader bug must still leave a results.json that says so
        result = failed_result(submission.name, f"internal grader error: {type(exc).__name__}: {exc}")
    finally:
        for k in kernels:
            k.close()
        pool.close()
    _Stopped.check()
    isolation = sandbox.isolation_info(limits)
    write_result(args.out, result, shown, isolation)
    print(report.terminal(result, isolation))
    print(f"results: {args.out / 'results.json'}")
    return 0


def _executor(args, limits):
    """Who grades the batch: a Dask cluster (--scheduler), else the local pool; or, when this grader's
    expected outputs cannot be loaded, no one, and every submission's result says why."""
    from tqdm import tqdm

    from grader import expected as expected_outputs
    from grader import report
    from grader.batch import NotGraded
    from grader.local_pool import LocalPool

    if args.scheduler:
        from grader.dask_pool import DaskPool

        return DaskPool(args.scheduler, limits, say=lambda line: tqdm.write(line, file=sys.stderr),
                        version=args.notebook_version)
    try:
        expected_outputs.load_versions(args.expected)
    except GraderError as exc:
        print(f"Grading failed: {exc}")
        return NotGraded(f"the grader is not set up: {exc}")
    print(report.isolation_line(sandbox.isolation_info(limits)), file=sys.stderr)
    return LocalPool(limits, args.workers, args.expected, args.notebook_version)


def _grade_batch(args, submissions, shown, limits, students=None):
    from grader.batch import Batch

    batch = Batch(args.out, limits, expected_dir=args.expected, progress=not args.no_progress, visibility=shown,
                  executor=_executor(args, limits), version=args.notebook_version, students=students)
    try:
        payloads = batch.run(submissions)
    except KeyboardInterrupt:
        print(f"stopped ({signal.Signals(_Stopped.signum).name}): {batch.graded} of {batch.total} submissions graded; "
              "run the same command again to grade the rest", file=sys.stderr)
        return 128 + _Stopped.signum
    except GraderError as exc:  # the cluster: unreachable, lost, or no worker that can grade
        print(f"error: {exc}; {batch.graded} of {batch.total} submissions graded (their results are kept); "
              "run the same command again to grade the rest", file=sys.stderr)
        return 3
    width = max([len(p.name) for p in payloads] + [10])
    print("submission".ljust(width), "score".rjust(8))
    for path, payload in payloads.items():
        print(path.name.ljust(width), f"{payload['score']:g}".rjust(8))
    print(f"results: {args.out}/<submission>/results.json; gradebook: {args.out / 'gradebook.csv'}; "
          f"class report: {args.out / 'class.html'}")
    return 0


def _expected(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow runs in this process here
    from grader import expected as expected_outputs
    from grader.native_logs import filtered_stderr

    with filtered_stderr():  # and abseil prints its start-up lines whatever that says
        for path, what in expected_outputs.generate(args.out, args.notebook_version).items():
            print(f"{what} {path}")
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
    figures_path, page = class_files.write(args.out, template=(args.template,) if args.template else class_files.TEMPLATE)
    print(f"class report: {page}; figures: {figures_path}")
    return 0


def _export(args):
    from grader import lms_files

    if args.canvas is not None and args.feedback_zip is not None:
        print("error: --feedback-zip is for Moodle (--moodle); Canvas takes feedback in SpeedGrader", file=sys.stderr)
        return 2
    if args.moodle is not None and args.column is not None:
        print("error: --column is for Canvas (--canvas): a Moodle worksheet has one Grade column", file=sys.stderr)
        return 2
    try:
        if args.canvas is not None:
            lines = lms_files.export_canvas(args.out, args.canvas, args.to, args.column, args.missing)
        else:
            lines = lms_files.export_moodle(args.out, args.moodle, args.to, args.feedback_zip, args.missing)
    except GraderError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # the file to write: a folder, no permission, no room
        print(f"error: cannot write {exc.filename or args.to}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(lines[0])
    for line in lines[1:]:
        print(line, file=sys.stderr)
    print(f"import file: {args.to}; who is missing or unmatched: {args.out / lms_files.EXPORT_LISTS}")
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    return {"grade": _grade, "class": _class, "export": _export, "expected": _expected}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
