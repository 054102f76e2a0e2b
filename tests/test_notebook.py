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


def test_every_versions_notebook_and_reference_have_its_signatures():
    """Each version's assignment notebook (its stubs) and its reference define its functions exactly as its
    version.json says, and the stubs leave the work to do."""
    import importlib

    import nbformat

    from grader import versions

    for version in map(versions.get, versions.ids()):
        nb = nbformat.read(notebooks.ROOT / version.notebook, as_version=4)
        defs = _defs(nb)
        reference = ast.parse(inspect.getsource(importlib.import_module(version.reference["module"].split(".")[0]
                                                                       if version.reference["module"] == "solution"
                                                                       else version.reference["module"])))
        ref_defs = {n.name: n for n in ast.walk(reference) if isinstance(n, ast.FunctionDef)}
        for f in version.functions:
            assert _signature(defs[f]) == version.signatures[f], (version.id, f)
            if f in ref_defs:
                assert _signature(ref_defs[f]) == version.signatures[f], (version.id, f)
            stub = notebooks.graded_cell(nb, f).source
            assert "### START CODE HERE ###" in stub and "= None" in stub.split("### START CODE HERE ###")[1]
