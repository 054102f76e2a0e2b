"""Build submissions for tests: the assignment notebook with its graded cells replaced."""

import copy
import inspect
from pathlib import Path

import nbformat

import solution.blocks
import solution.resnet50

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = ROOT / "assignment" / "ResNets.ipynb"


def assignment():
    return nbformat.read(ASSIGNMENT, as_version=4)


def solution_sources():
    """Each graded function's code as the solution writes it, self-contained for one notebook cell."""
    helper = inspect.getsource(solution.blocks._names)
    blocks = "from keras import layers\n\n" + helper
    return {
        "identity_block": blocks + "\n\n" + inspect.getsource(solution.blocks.identity_block),
        "convolutional_block": blocks + "\n\n" + inspect.getsource(solution.blocks.convolutional_block),
        "ResNet50": "import keras\nfrom keras import layers\n\nSTAGES = " + repr(solution.resnet50.STAGES)
        + "\n\n" + inspect.getsource(solution.resnet50.ResNet50),
    }


def graded_cell(nb, function):
    for cell in nb.cells:
        if cell.metadata.get("grader", {}).get("function") == function:
            return cell
    raise KeyError(function)


def filled(sources, base=None):
    """The assignment notebook with each named function's cell replaced by the given source."""
    nb = copy.deepcopy(base if base is not None else assignment())
    for function, source in sources.items():
        graded_cell(nb, function).source = source
    return nb


def solved(**overrides):
    """The notebook solved with the solution's code, with some functions' code overridden."""
    return filled({**solution_sources(), **overrides})


def write(nb, path):
    nbformat.write(nb, str(path))
    return path
