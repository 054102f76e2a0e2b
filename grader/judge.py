"""Judge a whole submission: expected and measured FunctionMeasurements in, a GradeResult out. Pure."""

from grader import versions
from grader.checks import judge_function, layer_tables
from grader.results import GradeResult, Limit


def judge(name, expected, measured, notes=(), seconds=0.0, definition_errors=(), limits=(), version=None, how=""):
    """Pure: expected and measured FunctionMeasurements in, the GradeResult out.

    `definition_errors` are the messages of the student's definitions that failed to run (Keras 2 imports);
    `limits` the Limits the notebook's definitions ran into. Those the functions ran into are added here.
    `version` (a grader.versions.Version; the default one when None) gives the functions, their points
    and how their modes ran; `how` says how it was told.
    """
    version = version or versions.get()
    checks, tables, hit = [], [], list(limits)
    for f in version.functions:
        mine = judge_function(expected[f], measured.get(f), version.points[f], definition_errors, version)
        checks.extend(mine)
        tables.extend(layer_tables(expected[f], measured.get(f), version))
        limited = next((c for c in mine if c.limit), None)
        if limited is not None:
            why = limited.note or next((x.text for x in limited.findings if x.issue == "error"), f"{f} ran into a limit")
            hit.append(Limit(limited.limit, why, f))
    return GradeResult(name, tuple(checks), tuple(notes), "", seconds, tuple(tables), limits=tuple(hit),
                       version=(version.id, version.title, how or f"graded as the {version.id} version"))
