"""The checks without a kernel: matching, tolerances, messages and validation of kernel data."""

import base64

import numpy as np
import pytest

from grader.checks import arrays_agree, check_names, check_params, check_shapes, config_differences, tolerance
from grader.errors import InvalidMeasurement
from grader.matching import describe, match_layers
from grader.measurement import CaseMeasurement, Layer, from_wire


def layer(i, name, kind, parents=(), shape=(None, 4, 4, 8), config=None, params=(0, 0), key=None):
    return Layer(i, name, kind.title(), kind, config or {}, tuple(shape), params[0], params[1], tuple(parents), key or f"k{i}")


def block(names=("res2a_branch2a", "bn2a_branch2a"), conv_parent=0, strides=(1, 1)):
    """input -> conv -> bn -> relu, the first steps of a block."""
    return (
        layer(0, "input_layer", "input"),
        layer(1, names[0], "conv2d", (conv_parent,), config={"strides": strides, "filters": 8}, params=(72, 0)),
        layer(2, names[1], "batchnorm", (1,), config={"axis": (3,)}, params=(16, 16)),
        layer(3, "activation_12", "relu", (2,)),
    )


def case(layers, **kw):
    return CaseMeasurement("c", "call", tuple(layers), (None, 4, 4, 8), 88, 16, **kw)


def test_matching_by_name_ignores_counter_names():
    pairs = match_layers(block(), block())
    assert pairs == {0: 0, 1: 1, 2: 2, 3: 3}


def test_misnamed_layer_is_matched_by_structure_and_costs_names_only():
    ref, sub = block(), block(names=("res2a_branchl", "bn2a_branch2a"))
    pairs = match_layers(ref, sub)
    assert pairs[1] == 1
    msgs = check_names(case(ref), case(sub), pairs)
    assert len(msgs) == 1 and "res2a_branch1" not in msgs[0] and "'res2a_branchl'" in msgs[0]
    assert check_shapes(case(ref), case(sub), pairs) == []
    assert check_params(case(ref), case(sub), pairs) == []


def test_letter_l_gets_the_typo_hint():
    ref = (layer(0, "input_layer", "input"), layer(1, "res2a_branch1", "conv2d", (0,), params=(9, 0)))
    sub = (layer(0, "input_layer", "input"), layer(1, "res2a_branchl", "conv2d", (0,), params=(9, 0)))
    [msg] = check_names(case(ref), case(sub), match_layers(ref, sub))
    assert "digit one" in msg and "typo" in msg


def test_missing_named_layer_is_reported():
    ref = block()
    sub = (ref[0], ref[1], layer(2, "activation", "relu", (1,)))
    msgs = check_names(case(ref), case(sub), match_layers(ref, sub))
    assert msgs == ["bn2a_branch2a: expected a BatchNormalization layer named 'bn2a_branch2a', found none"]


def test_shape_difference_names_layer_and_config_and_hides_consequences():
    ref = block()
    sub = list(block(strides=(2, 2)))
    sub[1] = layer(1, "res2a_branch2a", "conv2d", (0,), (None, 2, 2, 8), {"strides": (2, 2), "filters": 8}, (72, 0))
    sub[2] = layer(2, "bn2a_branch2a", "batchnorm", (1,), (None, 2, 2, 8), {"axis": (3,)}, (16, 16))
    msgs = check_shapes(case(ref), case(sub), match_layers(ref, sub))
    assert msgs[0] == ("res2a_branch2a: expected output shape (None, 4, 4, 8), found (None, 2, 2, 8); "
                       "expected strides (1, 1), found (2, 2)")
    assert msgs[-1].startswith("1 later layer(s)")


def test_config_differences_formats_tuples():
    a = layer(1, "x", "conv2d", config={"strides": (1, 1), "padding": "same"})
    b = layer(1, "x", "conv2d", config={"strides": (1, 1), "padding": "valid"})
    assert config_differences(a, b) == ["expected padding 'same', found 'valid'"]


def test_unnamed_layers_are_described_by_what_feeds_them():
    ref = block()
    assert describe(ref[3], ref) == "ReLU after bn2a_branch2a"


def test_tolerance_scales_with_the_values():
    small, large = np.full(4, 0.5, "float32"), np.full(4, 500.0, "float32")
    assert tolerance(large) == pytest.approx(1000 * tolerance(small))
    assert arrays_agree(large, large + 0.4)
    assert not arrays_agree(small, small + 0.4)
    assert not arrays_agree(small, np.full(4, np.nan, "float32"))
    assert not arrays_agree(small, np.zeros(5, "float32"))


def _wire_case(**over):
    arr = {"__array__": base64.b64encode(np.zeros(2, "<f4").tobytes()).decode(), "shape": [2]}
    fp = {"channel": arr, "spatial": arr}
    mode = {"output": arr, "layers": {"1": fp}}
    c = {
        "case": "c", "call": "f()", "output_shape": [None, 2], "trainable_params": 2, "non_trainable_params": 0,
        "layers": [
            {"index": 0, "name": "in", "class_name": "InputLayer", "kind": "input", "config": {},
             "output_shape": [None, 2], "trainable_params": 0, "non_trainable_params": 0, "parents": [], "key": "a"},
            {"index": 1, "name": "d", "class_name": "Dense", "kind": "dense", "config": {"units": 2},
             "output_shape": [None, 2], "trainable_params": 2, "non_trainable_params": 0, "parents": [0], "key": "b"},
        ],
        "activations": {"inference": mode, "training": mode},
    }
    c.update(over)
    return {"function": "f", "cases": [c]}


def test_well_formed_wire_data_is_accepted():
    m = from_wire(_wire_case(), "f")
    assert m.cases[0].layers[1].name == "d"
    assert m.cases[0].activations["training"].output.shape == (2,)


@pytest.mark.parametrize("bad", [
    {"trainable_params": True},
    {"output_shape": "big"},
    {"layers": [{"index": 0}]},
    {"activations": {"inference": {}}},
])
def test_malformed_wire_data_is_rejected(bad):
    with pytest.raises(InvalidMeasurement):
        from_wire(_wire_case(**bad), "f")


def test_array_sizes_and_encodings_are_checked():
    good = _wire_case()
    good["cases"][0]["activations"]["inference"]["output"] = {"__array__": "AAAA", "shape": [2]}
    with pytest.raises(InvalidMeasurement, match="bytes"):
        from_wire(good, "f")
    good["cases"][0]["activations"]["inference"]["output"] = {"__array__": "!!", "shape": [2]}
    with pytest.raises(InvalidMeasurement, match="base64"):
        from_wire(good, "f")


def test_parents_must_point_backwards():
    w = _wire_case()
    w["cases"][0]["layers"][1]["parents"] = [1]
    with pytest.raises(InvalidMeasurement, match="parents"):
        from_wire(w, "f")


def test_a_measurement_for_another_function_is_rejected():
    with pytest.raises(InvalidMeasurement, match="expected 'g'"):
        from_wire(_wire_case(), "g")


# ----------------------------------------------------------------------------- pairing by place in the data flow


def conv_block(names=("res3a_branch2a", "bn3a_branch2a", "res3a_branch1", "bn3a_branch1")):
    """input -> conv 2a -> bn -> relu, and input -> conv 1 -> bn, both into an Add: two convolutions read the input."""
    return (
        layer(0, "input_layer", "input"),
        layer(1, names[0], "conv2d", (0,), config={"filters": 4}),
        layer(2, names[1], "batchnorm", (1,)),
        layer(3, "re_lu", "relu", (2,)),
        layer(4, names[2], "conv2d", (0,), config={"filters": 10}),
        layer(5, names[3], "batchnorm", (4,)),
        layer(6, "add", "add", (3, 5)),
    )


def test_layers_pair_by_what_they_read_and_feed_not_by_name():
    ref = conv_block()
    swapped = conv_block(names=("res3a_branch1", "bn3a_branch1", "res3a_branch2a", "bn3a_branch2a"))
    assert match_layers(ref, swapped) == {i: i for i in range(7)}
    msgs = check_names(case(ref), case(swapped), match_layers(ref, swapped))
    assert len(msgs) == 4 and msgs[0].startswith("res3a_branch2a: expected the Conv2D layer here to be named "
                                                 "'res3a_branch2a', found 'res3a_branch1'")


def test_shortcut_built_first_pairs_the_same():
    ref = conv_block()
    first = (ref[0], layer(1, "res3a_branch1", "conv2d", (0,), config={"filters": 10}),
             layer(2, "bn3a_branch1", "batchnorm", (1,)), layer(3, "res3a_branch2a", "conv2d", (0,), config={"filters": 4}),
             layer(4, "bn3a_branch2a", "batchnorm", (3,)), layer(5, "re_lu", "relu", (4,)), layer(6, "add", "add", (2, 5)))
    assert match_layers(ref, first) == {0: 0, 1: 3, 2: 4, 3: 5, 4: 1, 5: 2, 6: 6}


def test_unnamed_layers_pair_by_structure():
    ref = conv_block()
    unnamed = conv_block(names=("conv2d", "batch_normalization", "conv2d_1", "batch_normalization_1"))
    assert match_layers(ref, unnamed) == {i: i for i in range(7)}


def test_an_extra_layer_is_looked_through_and_a_missing_one_left_unpaired():
    ref = conv_block()
    extra = ref[:5] + (layer(5, "bn3a_branch1", "batchnorm", (4,)), layer(6, "re_lu_1", "relu", (5,)),
                       layer(7, "add", "add", (3, 6)))
    assert match_layers(ref, extra) == {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 7}
    missing = ref[:5] + (layer(5, "add", "add", (3, 4)),)  # the shortcut without its BatchNormalization
    assert match_layers(ref, missing) == {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 6: 5}


def test_a_layer_of_another_kind_in_a_layers_place_is_paired_with_it():
    ref = (layer(0, "input_layer", "input"), layer(1, "avg_pool", "avgpool", (0,)), layer(2, "flatten", "flatten", (1,)))
    sub = (layer(0, "input_layer", "input"), layer(1, "avg_pool", "maxpool", (0,)), layer(2, "flatten", "flatten", (1,)))
    assert match_layers(ref, sub) == {0: 0, 1: 1, 2: 2}
    [msg] = check_names(case(ref), case(sub), match_layers(ref, sub))
    assert msg == "avg_pool: expected an AveragePooling2D layer, found Maxpool"
