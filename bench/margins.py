"""The activations check's margins: how far correct answers and real mistakes land from the tolerance.

For each function and mode, side by side:
  - the largest deviation of any correct variant (the solution itself and tests/corpus.py's
    equivalents), measured here in float32 as a submission is, from the float64 reference;
  - the tolerance (grader.spec.RTOL);
  - the smallest deviation among the corpus mistakes the activations check exists to catch
    (those that lose activations with the right shapes).
Deviation is what the check compares with RTOL (grader.agreement.deviation). The goal is a factor
of 10 or more on each side. Run alone: `python bench/margins.py`; `make bench` prints it too.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from grader.native_logs import filtered_stderr  # noqa: E402

with filtered_stderr():  # this process imports TensorFlow (through the corpus): drop its C++ start-up lines
    import corpus  # noqa: E402
from grader import expected  # noqa: E402
from grader.agreement import largest_deviation  # noqa: E402
from grader.matching import match_layers  # noqa: E402
from grader.measurement import MODES  # noqa: E402
from grader.spec import FUNCTIONS, RTOL  # noqa: E402


def deviations(variant, reference):
    """{mode: the largest deviation over the function's cases}, or None when a case did not build."""
    got = corpus.measure(variant, reference)
    by_case = {c.case: c for c in got.cases}
    out = {mode: 0.0 for mode in MODES}
    for ref in reference[variant.function].cases:
        sub = by_case.get(ref.case)
        if sub is None or sub.error:
            return None
        pairs = match_layers(ref.layers, sub.layers)
        for mode in MODES:
            out[mode] = max(out[mode], largest_deviation(ref, sub, pairs, mode))
    return out


def table():
    """Rows of (function, mode, worst correct, its variant, tolerance, smallest mistake, its variant)."""
    reference = expected.load_all()
    rows = []
    for function in FUNCTIONS:
        correct = [corpus.Variant("solution", function, ())]  # no edits: the solution itself
        correct += [v for v in corpus.EQUIVALENTS if v.function == function]
        caught = [v for v in corpus.MISTAKES
                  if v.function == function and "activations" in v.loses and "shapes" not in v.loses]
        good = [(v.id, deviations(v, reference)) for v in correct]
        bad = [(vid, d) for vid, d in ((v.id, deviations(v, reference)) for v in caught) if d is not None]
        for mode in MODES:
            worst = max(good, key=lambda g: g[1][mode])
            least = min(bad, key=lambda b: b[1][mode]) if bad else ("none", {mode: float("nan")})
            rows.append((function, mode, worst[1][mode], worst[0], RTOL, least[1][mode], least[0]))
    return rows


def print_table(rows, out=sys.stdout):
    print("activation margins (deviation = largest |found - reference| / the largest |reference| of that output or layer)", file=out)
    print(f"{'function':<21}{'mode':<11}{'correct (max)':>14}{'tolerance':>11}{'mistake (min)':>15}"
          f"{'tol/correct':>13}{'mistake/tol':>13}   worst correct; closest mistake", file=out)
    for function, mode, good, good_id, tol, bad, bad_id in rows:
        print(f"{function:<21}{mode:<11}{good:>14.2e}{tol:>11.0e}{bad:>15.2e}{tol / max(good, 1e-30):>13.0f}"
              f"{bad / tol:>13.0f}   {good_id}; {bad_id}", file=out)


if __name__ == "__main__":
    with filtered_stderr():  # TensorFlow logs again when it first runs a model
        rows = table()
    print_table(rows)
