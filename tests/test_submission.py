"""Reading submissions and keeping only their definitions: no kernel needed."""

import json

import nbformat
import pytest

from grader.errors import SubmissionError
from grader.submission import definitions, extract_definitions, parse_notebook


@pytest.mark.parametrize("data, message", [
    (b"", "is empty"),
    (b"   \n", "is empty"),
    (b"{not json", "not JSON"),
    (b"import keras\ndef identity_block(X):\n    return X\n", "Python source renamed"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b'{"a": 1}', "no cells"),
    (b"[1, 2]", "no cells"),
])
def test_unreadable_files_get_a_clear_message(data, message):
    with pytest.raises(SubmissionError, match=message):
        parse_notebook(data, "nb.ipynb")


def test_old_nbformat_is_upgraded():
    v3 = {"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": [{"cells": [
        {"cell_type": "code", "input": "def identity_block(X, f, filters, stage, block):\n    return X",
         "language": "python", "outputs": []}]}]}
    nb = parse_notebook(json.dumps(v3).encode(), "old.ipynb")
    assert nb.nbformat == 4
    assert "identity_block" in extract_definitions(nb).cells[0][1]


def test_only_definitions_are_kept_with_their_formatting():
    src = ("import numpy as np\nmodel = ResNet50()\nmodel.fit(X, Y, epochs=10)\n"
           "def f(a,\n      b):\n    return a  # comment\n"
           "init = glorot_uniform(seed=0)\nhistory = model.fit(X)\nSTAGES = [(2, 'bc')]\n")
    assert definitions(src) == ["import numpy as np", "def f(a,\n      b):\n    return a  # comment",
                                "init = glorot_uniform(seed=0)", "STAGES = [(2, 'bc')]"]


def test_magics_shell_and_syntax_errors_are_skipped_with_a_note():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("%matplotlib inline\n!pip install foo\nimport keras"),
        nbformat.v4.new_code_cell("def broken(:\n    pass"),
        nbformat.v4.new_markdown_cell("def not_code(): pass"),
        nbformat.v4.new_code_cell("def identity_block(X):\n    return 1\ndef identity_block(X):\n    return 2"),
    ])
    ex = extract_definitions(nb)
    assert [src for _, src in ex.cells] == ["import keras", "def identity_block(X):\n    return 1",
                                            "def identity_block(X):\n    return 2"]
    assert ex.notes == ("code cell 2 has a syntax error and was skipped: invalid syntax (line 1)",)


def test_statements_sharing_a_line_are_split_safely():
    assert definitions("import os; os.system('rm -rf /')\nx = 1") == ["import os", "x = 1"]


def test_if_and_try_blocks_of_definitions_are_kept_but_not_ones_that_run_code():
    src = "try:\n    import foo\nexcept ImportError:\n    foo = None\nfor i in range(3):\n    train()\nif True:\n    train()\n"
    assert definitions(src) == ["try:\n    import foo\nexcept ImportError:\n    foo = None"]
