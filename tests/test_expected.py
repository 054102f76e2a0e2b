"""The committed expected outputs are what the solution produces now, byte for byte."""

import base64
import filecmp

import numpy as np

import pytest

import solution
from grader import expected
from grader.errors import ExpectedOutputsError
from grader.spec import FUNCTIONS


@pytest.mark.slow
def test_committed_expected_outputs_are_fresh(tmp_path):
    expected.generate(tmp_path)
    for f in FUNCTIONS:
        for ext in ("json", "h5"):
            committed = expected.DEFAULT_DIR / f"{f}.{ext}"
            assert filecmp.cmp(tmp_path / f"{f}.{ext}", committed, shallow=False), (
                f"{committed} is stale against solution/: run `make expected`")


def test_a_changed_solution_makes_them_stale(tmp_path, monkeypatch):
    """The freshness test can fail: a solution whose block lacks its final ReLU measures differently."""
    import keras

    def without_final_relu(X, f, filters, stage, block):
        Y = solution.identity_block(X, f, filters, stage, block)
        return Y._keras_history.operation._inbound_nodes[0].arguments.keras_tensors[0]

    monkeypatch.setattr(solution, "identity_block", without_final_relu)
    expected.save("identity_block", expected.measure_solution("identity_block"), tmp_path)
    assert not filecmp.cmp(tmp_path / "identity_block.h5", expected.DEFAULT_DIR / "identity_block.h5", shallow=False)
    assert keras  # the backend is loaded for measuring


def test_missing_expected_outputs_say_how_to_fix(tmp_path):
    with pytest.raises(ExpectedOutputsError, match="make expected"):
        expected.load("identity_block", tmp_path)


def test_saved_files_round_trip(tmp_path):
    wire = expected.load_wire("identity_block")
    expected.save("identity_block", wire_to_arrays(wire), tmp_path)
    again, original = expected.load("identity_block", tmp_path), expected.load("identity_block")
    assert [c.layers for c in again.cases] == [c.layers for c in original.cases]
    for a, b in zip(again.cases, original.cases):
        for mode in ("inference", "training"):
            assert np.array_equal(a.activations[mode].output, b.activations[mode].output)


def wire_to_arrays(value):
    """Decode wire arrays back to numpy, the form `save` takes."""
    if isinstance(value, dict):
        if "__array__" in value:
            return np.frombuffer(base64.b64decode(value["__array__"]), "<f4").reshape(value["shape"])
        return {k: wire_to_arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wire_to_arrays(v) for v in value]
    return value
