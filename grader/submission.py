"""Read a submitted notebook and keep only the code that defines things.

Grading never runs a student's training or data loading: from each code cell it
keeps the top-level imports, function and class definitions, and assignments
that call nothing, in order, so a graded function works exactly as the student
defined it (the last definition wins, as in Python). Everything here is pure
apart from `read_notebook`'s one file read.
"""

import ast
import json
from dataclasses import dataclass

import nbformat
from IPython.core.inputtransformer2 import TransformerManager

from grader.errors import SubmissionError

# Calls allowed in kept assignments: initializer objects students keep at module level.
INITIALIZER_CALLS = frozenset({
    "glorot_uniform", "GlorotUniform", "glorot_normal", "GlorotNormal", "he_normal", "HeNormal",
    "he_uniform", "HeUniform", "RandomNormal", "RandomUniform", "TruncatedNormal", "Zeros", "Ones",
    "Constant", "lecun_normal", "LecunNormal",
})


@dataclass(frozen=True)
class Extraction:
    cells: tuple  # (cell number, source) pairs to run, in notebook order: one per definition
    notes: tuple  # what was skipped and why, for the student


def read_submission(path):
    """The file's bytes, or SubmissionError saying why it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SubmissionError(f"cannot read {path.name}: {exc.strerror or exc}") from None


def read_notebook(path):
    """Parse the file as a v4 notebook, or raise SubmissionError saying plainly what is wrong."""
    return parse_notebook(read_submission(path), path.name)


def parse_notebook(data, name="submission"):
    if not data.strip():
        raise SubmissionError(f"{name} is empty: submit the .ipynb file of your notebook")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SubmissionError(
            f"{name} is not a notebook: byte {data[exc.start]:#04x} at offset {exc.start} is not UTF-8 text"
        ) from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        looks_python = any(w in text[:2000] for w in ("import ", "def ", "from "))
        hint = " It looks like Python source renamed to .ipynb: submit the notebook itself." if looks_python else ""
        raise SubmissionError(
            f"{name} is not a notebook: it is not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}).{hint}"
        ) from None
    if not isinstance(raw, dict) or "cells" not in raw and "worksheets" not in raw:
        raise SubmissionError(f"{name} is not a notebook: its JSON has no cells")
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises several types for malformed notebooks
        raise SubmissionError(f"{name} is not a readable notebook: {str(exc).splitlines()[0][:300]}") from None
    return nb


def _callee_name(call):
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def _calls_only_initializers(node):
    return all(_callee_name(c) in INITIALIZER_CALLS for c in ast.walk(node) if isinstance(c, ast.Call))


def is_definition(stmt):
    """True for statements that define things without running the student's program."""
    if isinstance(stmt, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Pass)):
        return True
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        return stmt.value is not None and _calls_only_initializers(stmt.value)
    if isinstance(stmt, ast.Expr):
        return isinstance(stmt.value, ast.Constant)  # a bare string, e.g. a docstring
    if isinstance(stmt, ast.If):
        return _calls_only_initializers(stmt.test) and all(map(is_definition, stmt.body + stmt.orelse))
    if isinstance(stmt, ast.Try):
        handlers = [s for h in stmt.handlers for s in h.body]
        return all(map(is_definition, stmt.body + handlers + stmt.orelse + stmt.finalbody))
    return False


def _first_line(stmt):
    decorators = getattr(stmt, "decorator_list", [])
    return min([stmt.lineno] + [d.lineno for d in decorators])


def definitions(source):
    """Each top-level definition's source, in order, with the student's own formatting.

    One statement per entry, so a failing import (say, of a module only the
    student has) does not stop the definitions after it.
    """
    tree = ast.parse(source)
    lines = source.splitlines()
    spans = [(_first_line(s), s.end_lineno) for s in tree.body]
    out = []
    for i, stmt in enumerate(tree.body):
        if not is_definition(stmt):
            continue
        first, last = spans[i]
        shares_line = (i > 0 and spans[i - 1][1] >= first) or (i + 1 < len(spans) and spans[i + 1][0] <= last)
        out.append(ast.unparse(stmt) if shares_line else "\n".join(lines[first - 1:last]))
    return out


def extract_definitions(nb):
    """Code to run for grading: every top-level definition, in notebook order."""
    transform = TransformerManager().transform_cell
    cells, notes = [], []
    number = 0
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        number += 1
        source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
        if not source.strip():
            continue
        try:
            python = transform(source)
            kept = definitions(python)
        except SyntaxError as exc:
            notes.append(f"code cell {number} has a syntax error and was skipped: {exc.msg} (line {exc.lineno})")
            continue
        except Exception as exc:  # IPython's transformer can fail on odd input
            notes.append(f"code cell {number} could not be read and was skipped: {exc}")
            continue
        cells.extend((number, src) for src in kept)
    return Extraction(tuple(cells), tuple(notes))
