"""The committed expected outputs are what the solution produces now, on this machine's CPU too.

The reference is computed in float64 and rounded to float32: the tables must be identical and
the arrays equal within expected.FRESH_RTOL, whatever the instruction set TensorFlow picks.
"""

import base64
import dataclasses
import shutil

import numpy as np

import pytest

import notebooks
import solution
from grader import expected, versions
from grader.errors import ExpectedOutputsError
from grader.spec import FUNCTIONS


@pytest.mark.slow
def test_committed_expected_outputs_are_fresh(tmp_path):
    written = expected.generate(tmp_path)
    assert set(written.values()) == {"wrote"}
    assert len(written) == 6 * len(versions.ids())
    for v in map(versions.get, versions.ids()):
        for f in v.functions:
            assert expected.differences(f, v.expected_dir(tmp_path), v.expected_dir(expected.DEFAULT_DIR)) == [], (
                f"the {v.id} version's expected outputs of {f} are stale against {v.reference['module']}: "
                "run `make expected`")


def _structure(measurement):
    return [[(x.kind, x.config, x.output_shape, x.parents, x.params) for x in case.layers] for case in measurement.cases]


@pytest.mark.parametrize("version", [v for v in versions.ids() if v != versions.DEFAULT])
def test_every_version_grades_the_same_network(version):
    """Each version's reference builds the original's ResNet-50, layer for layer; only the names and how
    the modes run differ. And a version without prescribed names names its layers by their place."""
    original, other = expected.load_all(), expected.load_all(version=versions.get(version))
    for f in FUNCTIONS:
        assert _structure(other[f]) == _structure(original[f]), f
    names = [x.name for x in other["ResNet50"].cases[0].layers]
    assert names[2] == "stage 1 Conv2D" and "stage 4 block 6: shortcut Conv2D" not in names
    assert "stage 4 block 1: shortcut Conv2D" in names and "stage 5 block 3: main path Conv2D 3" in names
    assert names[-3:] == ["average pooling", "Flatten", "output Dense"]


def test_the_training_build_of_a_block_is_measured_as_its_own_call():
    """The 2021 block's training mode is the block called with training=True (BatchNormalization on the
    batch), run as a plain call: its outputs differ from the inference call's at the first BatchNormalization."""
    measured = expected.load_all(version=versions.get("2021"))["identity_block"].cases[0]
    inference, training = measured.activations["inference"], measured.activations["training"]
    first_bn = next(x.index for x in measured.layers if x.kind == "batchnorm")
    conv = measured.layers[first_bn].parents[0]
    assert np.array_equal(inference.layers[conv].channel, training.layers[conv].channel)
    assert not np.allclose(inference.layers[first_bn].channel, training.layers[first_bn].channel, atol=1e-3)


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


def test_make_expected_leaves_files_that_hold_the_same_reference(tmp_path):
    """`generate` rewrites a function's files only when they differ: on another CPU git status stays clean."""
    for f in FUNCTIONS:
        for ext in ("json", "h5"):
            shutil.copyfile(expected.DEFAULT_DIR / f"{f}.{ext}", tmp_path / f"{f}.{ext}")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    original = versions.get()
    one = dataclasses.replace(original, signatures={"identity_block": original.signatures["identity_block"]})
    done = expected._generate(one, tmp_path)
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


def test_each_versions_outputs_load_when_first_needed_and_a_missing_one_says_how_to_fix(tmp_path):
    """A grader holds every version's expected outputs but loads a version's only when a notebook of it
    comes; one that is missing fails that notebook's grade with `make expected`, not the grader."""
    from grader.grade import grade_bytes

    for ext in ("json", "h5"):  # the default version's only
        for f in FUNCTIONS:
            shutil.copyfile(expected.DEFAULT_DIR / f"{f}.{ext}", tmp_path / f"{f}.{ext}")
    held = expected.load_versions(tmp_path, lazy=True)
    assert list(held) == list(versions.ids()) and list(held._loaded) == [versions.DEFAULT]
    with pytest.raises(ExpectedOutputsError, match="make expected"):
        held["2021"]
    notebook = (notebooks.ROOT / "assignment" / "2021" / "Residual_Networks.ipynb").read_bytes()
    result = grade_bytes("n.ipynb", notebook, held)  # fails before any kernel is needed
    assert result.score == 0 and "the grader is not set up" in result.error and "make expected" in result.error
    assert {c.aspect for c in result.checks} == {"shapes", "params", "activations"}  # the 2021 version's checks
    with pytest.raises(ExpectedOutputsError):
        expected.load_versions(tmp_path)  # eager: every version at once
