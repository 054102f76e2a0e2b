"""Judge a whole submission: expected and measured FunctionMeasurements in, a GradeResult out. Pure."""

from grader.checks import judge_function, layer_tables
from grader.results import GradeResult
from grader.spec import FUNCTIONS, POINTS


def judge(name, expected, measured, notes=(), seconds=0.0, definition_errors=()):
    """Pure: expected and measured FunctionMeasurements in, the GradeResult out.

    `definition_errors` are the messages of the student's definitions that failed to run (Keras 2 imports).
    """
    checks, tables = [], []
    for f in FUNCTIONS:
        checks.extend(judge_function(expected[f], measured.get(f), POINTS[f], definition_errors))
        tables.extend(layer_tables(expected[f], measured.get(f)))
    return GradeResult(name, tuple(checks), tuple(notes), "", seconds, tuple(tables))
