"""The checks students run in their notebook: the grader's own probe and checks, in-process.

They print the messages the grader would print, for the notebook version the function's
signature tells (grader.versions). ResNet50 is checked on the student's own blocks here (the
grader swaps in correct ones), so a block's mistake can show up twice in a self-check, never in
the grade.
"""

import inspect

from grader import expected, probe, versions
from grader.checks import judge_function
from grader.matching import reference_tables
from grader.measurement import from_wire


def _check(function, fn):
    try:
        params = tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        params = ()
    version = versions.detect_parameters({function: params} if params else {}).version
    want = expected.load(function, version.expected_dir(expected.DEFAULT_DIR))
    measured = probe.measure_function(function, fn, list(version.cases[function]), reference=reference_tables(want),
                                      modes=version.modes_of(function), keras2=version.keras2_defaults)
    got = from_wire(probe.encode(measured), function)
    checks = judge_function(want, got, version.points[function], version=version)
    lines = []
    for c in checks:
        mark = "PASS" if c.passed else "FAIL"
        lines.append(f"{mark}  {function} / {c.aspect}: {c.score:g} of {c.max_score:g} points")
        lines += [f"      {m}" for m in c.messages]
    print("\n".join(lines))
    return all(c.passed for c in checks)


def check_identity_block(fn):
    """Run the grader's checks on your identity_block; True when all pass."""
    return _check("identity_block", fn)


def check_convolutional_block(fn):
    """Run the grader's checks on your convolutional_block; True when all pass."""
    return _check("convolutional_block", fn)


def check_ResNet50(fn):
    """Run the grader's checks on your ResNet50 (built on your own blocks); True when all pass."""
    return _check("ResNet50", fn)
