"""The student notebook: signatures as the solution's, stubs that are placeholders, data and training cells."""

import ast
import inspect

import notebooks
import solution
from grader.spec import FUNCTIONS, SIGNATURES


def _defs(nb):
    out = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            for node in ast.parse(cell.source).body:
                if isinstance(node, ast.FunctionDef):
                    out[node.name] = node
    return out


def _signature(node):
    """The def's signature as text, e.g. '(X, f, filters, stage, block, s=2)'."""
    src = ast.unparse(node.args)
    return "(" + src.replace(" = ", "=") + ")"


def test_notebook_signatures_agree_with_the_solution():
    defs = _defs(notebooks.assignment())
    for f in FUNCTIONS:
        assert _signature(defs[f]) == SIGNATURES[f]
        assert str(inspect.signature(getattr(solution, f))) == SIGNATURES[f]


def test_stubs_are_placeholders_between_markers():
    nb = notebooks.assignment()
    for f in FUNCTIONS:
        src = notebooks.graded_cell(nb, f).source
        head, _, rest = src.partition("### START CODE HERE ###")
        body, _, _ = rest.partition("### END CODE HERE ###")
        assert body, f"{f} has no START/END markers"
        code = "\n".join(line for line in body.splitlines() if not line.strip().startswith("#"))
        assert "layers." not in code and "block(" not in code
        assert "= None" in code


def test_notebook_checks_each_function_and_loads_and_trains():
    sources = [c.source for c in notebooks.assignment().cells if c.cell_type == "code"]
    text = "\n".join(sources)
    for f in FUNCTIONS:
        assert f"check_{f}({f})" in text
    assert "load_signs(" in text and ".fit(" in text and ".evaluate(" in text
