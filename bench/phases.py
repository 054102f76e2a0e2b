"""Where one grade's time goes, phase by phase: the kernel's start and imports, each function's build,
weights and runs, the encoding, and the grader's validation, judging and reports.

The probe's phases are measured in this process on the solution (the same calls a kernel makes on a
correct submission), for this tree's probe and for a baseline's (`--baseline REV`, default the commit
before the speed work), runs interleaved after one discarded warm-up run, medians; "after" also freezes
the garbage collector first where this tree's grading notebook does. The kernel's phases are measured
on a real kernel with this tree's sandbox, running each side's warm-up (its TensorFlow import); where
this tree forks its kernels from a zygote (bubblewrap; grader.zygote), "after" times a kernel forked
from a warm zygote, and the zygote's own start, paid once per worker, on a row of its own.
Wall-clock seconds; asserts nothing.
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
import types
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from grader.native_logs import filtered_stderr  # noqa: E402

PROBE_PHASES = ("build", "tables", "weights", "runs")
BASELINE = "3324b65"  # the last commit before issue 18's speed work (as in bench/before_after.py)


def baseline_source(rev, path):
    return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout


def freezes(setup_source):
    """Whether a grading notebook's setup cell freezes the garbage collector's view of the imports."""
    return "gc.freeze()" in setup_source


def load_probe(source):
    """A probe module from its source text, loaded as the kernel loads it."""
    module = types.ModuleType("_bench_probe")
    exec(compile(source, "<bench probe>", "exec"), module.__dict__)
    return module


class Clock:
    """Seconds spent per phase name, added up."""

    def __init__(self):
        self.spent = {}

    @contextmanager
    def phase(self, name):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.spent[name] = self.spent.get(name, 0.0) + time.perf_counter() - start

    def wrap(self, fn, name):
        def timed(*args, **kwargs):
            with self.phase(name() if callable(name) else name):
                return fn(*args, **kwargs)
        return timed


def one_grade_phases(probe, expected, freeze=False):
    """{phase: seconds} for measuring the solution with `probe`, then validating, judging and reporting it.

    `freeze`: gc.freeze() first, as the grading notebook's setup cell does (undone at the end)."""
    import gc

    import solution
    from grader import html_report, report
    from grader.judge import judge
    from grader.matching import reference_tables
    from grader.measurement import from_wire
    from grader.spec import CASES, FUNCTIONS

    clock, current = Clock(), [""]
    saved = {n: getattr(probe, n) for n in ("graph_nodes", "layer_table", "pair_layers", "set_seeded_weights",
                                             "activations")}
    phase_of = {"graph_nodes": "tables", "layer_table": "tables", "pair_layers": "tables",
                "set_seeded_weights": "weights", "activations": "runs"}
    for n, fn in saved.items():
        setattr(probe, n, clock.wrap(fn, lambda n=n: f"{current[0]}: {phase_of[n]}"))
    measured = {}
    if freeze:
        gc.freeze()
    try:
        for f in FUNCTIONS:
            current[0] = f
            build = clock.wrap(getattr(solution, f), f"{f}: build")  # ResNet50's includes its blocks'
            with clock.phase(f"{f}: total"):
                m = probe.measure_function(f, build, list(CASES[f]), reference=reference_tables(expected[f]))
            with clock.phase("encode (kernel)"):
                wire = json.dumps(probe.encode(m))
            with clock.phase("validate (grader)"):
                measured[f] = from_wire(json.loads(wire), f)
            parts = sum(clock.spent.get(f"{f}: {n}", 0.0) for n in PROBE_PHASES)
            clock.spent[f"{f}: other (clear_session, Model, ...)"] = clock.spent[f"{f}: total"] - parts
    finally:
        if freeze:
            gc.unfreeze()
        for n, fn in saved.items():
            setattr(probe, n, fn)
    with clock.phase("judge (grader)"):
        result = judge("bench.ipynb", expected, measured)
    with clock.phase("reports (grader)"):
        report.results_json(report.gradescope(result))
        html_report.render(result)
        report.terminal(result)
    return clock.spent


def warm_up_of(kernel_source):
    """The WARM_UP code a kernel.py runs at kernel start (its TensorFlow import)."""
    import ast

    for node in ast.parse(kernel_source).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "WARM_UP" for t in node.targets):
            return ast.literal_eval(node.value)
    return "import keras"


def kernel_phases(limits, warm_up="import keras"):
    """{phase: seconds}: a sandboxed kernel's start until it answers, then its warm-up (`import keras`)."""
    from grader.kernel import Kernel

    clock = Clock()
    with clock.phase("kernel start (sandbox, ipykernel)"):
        kernel = Kernel(limits, warm_up=False)
        client = _ready_client(kernel)
    try:
        with clock.phase("imports: keras + TensorFlow (kernel)"):
            reply = client.execute_interactive(warm_up, timeout=300, output_hook=lambda msg: None)
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"import keras failed in the kernel: {reply['content']}")
    finally:
        client.stop_channels()
        kernel.close()
    return clock.spent


def _ready_client(kernel, deadline=120.0):
    """A client of `kernel` once it answers (a zygote's first kernel waits for the zygote's imports)."""
    from jupyter_client import BlockingKernelClient

    end = time.monotonic() + deadline
    while True:
        client = BlockingKernelClient(connection_file=kernel.km.connection_file)
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=max(1.0, end - time.monotonic()))
            return client
        except RuntimeError:  # no heartbeat yet
            client.stop_channels()
            if time.monotonic() > end:
                raise


def zygote_phases(limits):
    """{phase: seconds}: a worker's zygote until its first kernel answers (once per worker), then a
    second kernel forked from it until it answers (once per submission)."""
    from grader.kernel import Kernel
    from grader.zygote import Zygote

    clock = Clock()
    with clock.phase("zygote: start + imports, once per worker (not per grade)"):
        zygote = Zygote(limits)
        first = Kernel(limits, zygote=zygote)
        _ready_client(first).stop_channels()
    try:
        first.close()
        with clock.phase("kernel start (fork from the zygote, ipykernel)"):
            kernel = Kernel(limits, zygote=zygote)
            client = _ready_client(kernel)
        client.stop_channels()
        kernel.close()  # it imports nothing: the zygote did, before forking (the row above)
    finally:
        zygote.close()
    return clock.spent


def measure(repeat, baseline, limits=None):
    """{"before"/"after": {phase: [seconds per run]}}, runs interleaved, one discarded warm-up run first."""
    from grader import zygote
    from grader.expected import load_all
    from grader.sandbox import Limits, resolve

    limits = limits or resolve(Limits())  # a kernel needs its isolation resolved
    expected = load_all()
    from grader import grading_notebook

    probes = {"before": (load_probe(baseline_source(baseline, "grader/probe.py")),
                         freezes(baseline_source(baseline, "grader/grading_notebook.py")),
                         warm_up_of(baseline_source(baseline, "grader/kernel.py"))),
              "after": (load_probe((ROOT / "grader" / "probe.py").read_text()), freezes(grading_notebook.SETUP),
                        warm_up_of((ROOT / "grader" / "kernel.py").read_text()))}
    with filtered_stderr():
        one_grade_phases(probes["after"][0], expected)  # first builds pay one-time costs: not counted
        runs = {k: {} for k in probes}
        for _ in range(repeat):
            for k, (probe, freeze, warm_up) in probes.items():
                kernel = zygote_phases(limits) if k == "after" and zygote.enabled(limits) else kernel_phases(limits, warm_up)
                for name, s in {**kernel, **one_grade_phases(probe, expected, freeze)}.items():
                    runs[k].setdefault(name, []).append(s)
    return runs


def table(runs):
    """The phase table as text lines: phase, median before, median after."""
    med = statistics.median
    names = list(runs["after"]) + [n for n in runs["before"] if n not in runs["after"]]
    order = sorted(names, key=lambda n: (not n.startswith(("kernel", "imports", "zygote")), n.endswith("(grader)"),
                                         n.split(":")[0] if ":" in n else "~", "total" in n))
    lines = [f"{'phase (one grade, wall s)':<64}{'before':>9}{'after':>9}"]
    for n in order:
        b, a = runs["before"].get(n), runs["after"].get(n)
        cell = lambda v: f"{med(v):>9.2f}" if v else f"{'-':>9}"  # noqa: E731
        lines.append(f"{n:<64}{cell(b)}{cell(a)}")
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--baseline", default=BASELINE, help="the commit whose probe is 'before'")
    args = p.parse_args(argv)
    print("\n".join(table(measure(args.repeat, args.baseline))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
