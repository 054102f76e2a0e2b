"""Grade one submission: read, extract, execute in a kernel, validate, judge.

Data flows one way: notebook -> definitions -> grading notebook -> kernel outputs
-> validated measurements -> checks -> GradeResult. Only `grade_notebook`'s
reading and the kernel run touch the outside world.
"""

import time
from pathlib import Path

from grader import grading_notebook, versions
from grader.judge import judge
from grader.errors import ExpectedOutputsError, InvalidMeasurement, SubmissionError
from grader.kernel import run_notebook
from grader.matching import reference_tables
from grader.measurement import FunctionMeasurement, from_wire
from grader.probe import WIRE_MIMETYPE
from grader.results import MEMORY_ERRORS, Check, GradeResult, Limit
from grader.sandbox import Limits
from grader.submission import extract_definitions, parse_notebook, read_submission

PROBE_SOURCE = Path(__file__).with_name("probe.py")


def measurement_from_outputs(function, outputs):
    """The function's measurement from its cell's outputs, or why there is none. Never trusts, always validates."""
    payloads = [o for o in outputs if o.get("output_type") == "display_data" and WIRE_MIMETYPE in o.get("data", {})]
    if payloads:
        try:
            return from_wire(payloads[-1]["data"][WIRE_MIMETYPE], function)
        except InvalidMeasurement as exc:
            return FunctionMeasurement(function, missing=f"{function}: the measurement was rejected ({exc})",
                                       limit="no result")
    errors = [o for o in outputs if o.get("output_type") == "error"]
    if errors:
        e = errors[-1]
        return FunctionMeasurement(function, missing=f"measuring {function} failed: {e.get('ename')}: {e.get('evalue')}",
                                   limit="memory" if e.get("ename") in MEMORY_ERRORS else "")
    return FunctionMeasurement(function, missing=f"measuring {function} produced no result", limit="no result")


def failed_result(name, error, seconds=0.0, kind="not graded", version=None):
    """Grading could not happen at all: every check scores 0 and says why.

    `kind` is 'unreadable' when the file is no notebook, 'not graded' when the grader failed.
    """
    version = version or versions.get()
    checks = tuple(Check(f, a, p, (), error, why="grading_failed") for f in version.functions
                   for a, p in version.points[f].items())
    return GradeResult(name, checks, (), error, seconds, error_kind=kind)


def by_version(expected):
    """{version id: {function: expected measurement}}, from that or from one version's {function: ...}
    (the default version's, as tools and tests that know only it hand it)."""
    if set(expected) <= set(versions.ids()):
        return expected
    return {versions.DEFAULT: expected}


def skipped_notes(notebook):
    """What the kernel had to skip in the student's definitions: (note for the student, Limit) each."""
    notes = []
    for cell in notebook.cells:
        meta = cell.metadata.get("resnet_grader", {})
        if meta.get("skipped"):
            note = f"a definition in code cell {meta.get('cell_number')} {meta['skipped']} and was skipped"
            notes.append((note, Limit(meta.get("limit", "timeout"), note)))
    return notes


def definition_errors(notebook):
    """'ename: evalue (in: source)' of each of the student's definitions that raised (an import Keras 3 lacks, say).

    Kernel output, so untrusted: only short, plain text is kept, and it is only matched, never run.
    """
    errors = []
    for cell in notebook.cells:
        if cell.metadata.get("resnet_grader", {}).get("role") != "student":
            continue
        for out in cell.get("outputs", ()):
            if out.get("output_type") == "error":
                errors.append(f"{str(out.get('ename', ''))[:100]}: {str(out.get('evalue', ''))[:500]} "
                              f"(in: {' '.join(str(cell.source).split())[:300]})")
    return tuple(errors[:20])


def grade_notebook(path, expected, limits=Limits(), next_kernel=None, version=None):
    """Grade the notebook at `path` against the expected measurements (see grade_bytes)."""
    path = Path(path)
    try:
        data = read_submission(path)
    except SubmissionError as exc:
        return failed_result(path.name, str(exc), kind="unreadable")
    return grade_bytes(path.name, data, expected, limits, next_kernel, version)


def grade_bytes(name, data, expected, limits=Limits(), next_kernel=None, version=None):
    """Grade a notebook given as its file's bytes (what a Dask worker receives: no shared files).

    `expected` holds the expected measurements of each version (see `by_version`); the notebook is
    graded as the version its signatures tell (grader.versions.detect), or as `version` (an id) when
    given. `limits` must be resolved (grader.sandbox.resolve). `next_kernel` hands out started kernels
    (see grader.pool); by default one is started per need.
    """
    start = time.monotonic()
    try:
        nb = parse_notebook(data, name)
    except SubmissionError as exc:
        return failed_result(name, str(exc), time.monotonic() - start, kind="unreadable")
    extraction = extract_definitions(nb)
    detection = versions.detect([source for _, source in extraction.cells], version)
    v = detection.version
    try:
        expected = by_version(expected)[v.id]  # loaded now, where they are loaded when first needed
    except KeyError:
        return failed_result(name, f"the expected outputs of the {v.id} version are not loaded; run `make expected`",
                             time.monotonic() - start, version=v)
    except ExpectedOutputsError as exc:
        return failed_result(name, f"the grader is not set up: {exc}", time.monotonic() - start, version=v)
    notebook = grading_notebook.build(
        extraction.cells, PROBE_SOURCE.read_text(), v.blocks_source(), {f: list(v.cases[f]) for f in v.functions},
        {f: reference_tables(expected[f]) for f in v.functions}, {f: v.modes_of(f) for f in v.functions},
        v.course_sources(), v.keras2_defaults,
    )
    measured = {}
    for run in run_notebook(notebook, limits, next_kernel):
        measured[run.function] = (FunctionMeasurement(run.function, missing=run.failure, limit=run.limit)
                                  if run.failure else measurement_from_outputs(run.function, run.outputs))
    skipped = skipped_notes(notebook)
    notes = list(extraction.notes) + [note for note, _ in skipped]
    return judge(name, expected, measured, notes, time.monotonic() - start, definition_errors(notebook),
                 [limit for _, limit in skipped], v, detection.how)
