"""The committed expected outputs are what the solution produces now, on this machine's CPU too.

The reference is computed in float64 and rounded to float32: the tables must be identical and
the arrays equal within expected.FRESH_RTOL, whatever the instruction set TensorFlow picks.
"""

import base64
import shutil

import numpy as np

import pytest

import solution
from grader import expected
from grader.errors import ExpectedOutputsError
from grader.spec import FUNCTIONS


@pytest.mark.slow
def test_committed_expected_outputs_are_fresh(tmp_path):
    written = expected.generate(tmp_path)
    assert set(written.values()) == {"wrote"}
    for f in FUNCTIONS:
        assert expected.differences(f, tmp_path, expected.DEFAULT_DIR) == [], (
            f"grader/expected/{f}.* is stale against solution/: run `make expected`")


def test_a_changed_solution_makes_them_stale(tmp_path, monkeypatch):
    """The freshness test can fail: a solution whose block lacks its final ReLU measures differently."""
    import keras

    def without_final_relu(X, f, filters, stage, block):
        Y = solution.identity_block(X, f, filters, stage, block)
        return Y._keras_history.operation._inbound_nodes[0].arguments.keras_tensors[0]

    monkeypatch.setattr(solution, "identity_block", without_final_relu)
    expected.save("identity_block", expected.measure_solution("identity_block"), tmp_path)
    assert expected.differences("identity_block", tmp_path, expected.DEFAULT_DIR) != []
    assert keras  # the backend is loaded for measuring


def test_the_same_reference_on_another_cpu_is_not_stale(tmp_path):
    """Last-bit differences, as another instruction set gives, are the same reference; a real change is not."""
    for ext in ("json", "h5"):
        shutil.copyfile(expected.DEFAULT_DIR / f"identity_block.{ext}", tmp_path / f"identity_block.{ext}")
    arrays = {k: v.copy() for k, v in expected._arrays(tmp_path / "identity_block.h5").items()}
    name = sorted(arrays)[0]
    last_bit = arrays[name].view("<u4") ^ 1  # flip the last mantissa bit of every value
    resave(tmp_path / "identity_block.h5", arrays, name, last_bit.view("<f4"))
    assert expected.differences("identity_block", tmp_path, expected.DEFAULT_DIR) == []
    real = arrays[name] * (1 + 1e-4)
    resave(tmp_path / "identity_block.h5", arrays, name, real.astype("<f4"))
    assert expected.differences("identity_block", tmp_path, expected.DEFAULT_DIR) == [f"identity_block.h5: {name} differs"]


def test_make_expected_leaves_files_that_hold_the_same_reference(tmp_path, monkeypatch):
    """`generate` rewrites a function's files only when they differ: on another CPU git status stays clean."""
    for f in FUNCTIONS:
        for ext in ("json", "h5"):
            shutil.copyfile(expected.DEFAULT_DIR / f"{f}.{ext}", tmp_path / f"{f}.{ext}")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    monkeypatch.setattr(expected, "FUNCTIONS", ("identity_block",))
    done = expected.generate(tmp_path)
    assert set(done.values()) == {"unchanged"}
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def resave(path, arrays, name, value):
    import h5py

    arrays = dict(arrays, **{name: value})
    with h5py.File(path, "w", track_order=False, libver="earliest") as h5:
        for key in sorted(arrays):
            h5.create_dataset(key, data=arrays[key], track_times=False)


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
