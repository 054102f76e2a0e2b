"""The probe's seeded weights, drawn once and ahead: the same values as drawn one at a time, and drawn ahead
for every weight the reference has (so the ahead draw is the one actually used)."""

import numpy as np
import pytest

import solution
from grader import probe
from grader.matching import reference_tables
from grader.spec import CASES


class Recording(probe.SeededWeights):
    """Records which values set_seeded_weights asks for."""

    def __init__(self):
        super().__init__()
        self.asked = []

    def get(self, seed, name, shape, dtype):
        self.asked.append((tuple(seed), name, tuple(int(d) for d in shape), str(np.dtype(dtype))))
        return super().get(seed, name, shape, dtype)


def _model(function, case):
    import keras

    keras.backend.clear_session()
    if function == "ResNet50":
        return solution.ResNet50(**case["kwargs"])
    x = keras.Input(tuple(case["input_shape"]))
    return keras.Model(x, getattr(solution, function)(x, **case["kwargs"]))


def _seed(model, reference, drawn):
    nodes = probe.graph_nodes(model)
    records = probe.layer_table(nodes)
    probe.set_seeded_weights(nodes, records, probe.pair_layers(reference, records), drawn)
    return [np.array(w) for w in model.weights]


def test_a_kept_value_is_the_value_a_fresh_draw_gives():
    drawn = probe.SeededWeights()
    key = (("reference", 7), "kernel", (3, 3, 4, 8), "float32")
    drawn.draw_ahead([key])
    first = drawn.get(*key)
    np.testing.assert_array_equal(first, probe.SeededWeights.draw(*key))
    assert drawn.get(*key) is first  # drawn once
    # Anything that decides a value is part of its key: another shape, name, seed or dtype is drawn afresh.
    assert drawn.get(("reference", 7), "kernel", (3, 3, 4, 9), "float32").shape == (3, 3, 4, 9)
    assert not np.array_equal(drawn.get(("reference", 8), "kernel", (3, 3, 4, 8), "float32"), first)
    assert drawn.get(("reference", 7), "kernel", (3, 3, 4, 8), "float64").dtype == np.float64


def _params():
    for function, cases in CASES.items():
        for case in cases:
            marks = [pytest.mark.slow] if function == "ResNet50" else []
            yield pytest.param(function, case, marks=marks, id=f"{function}-{case['id']}")


@pytest.mark.parametrize("function, case", list(_params()))
def test_every_weight_of_the_reference_is_drawn_ahead_with_the_value_drawn_one_at_a_time(function, case,
                                                                                          expected_outputs):
    reference = reference_tables(expected_outputs[function])[case["id"]]
    predicted = set(probe.reference_weights(reference, "float32"))
    ahead = Recording()
    ahead.draw_ahead(sorted(predicted, key=str))
    with_ahead = _seed(_model(function, case), reference, ahead)
    assert set(ahead.asked) == predicted  # every weight predicted, nothing predicted that is not there
    one_at_a_time = _seed(_model(function, case), reference, None)
    assert len(with_ahead) == len(one_at_a_time)
    for a, b in zip(with_ahead, one_at_a_time):
        np.testing.assert_array_equal(a, b)


def test_a_predicted_value_of_another_shape_is_not_used(expected_outputs):
    """A submission whose layer has other weights than its reference partner gets a fresh draw of its own shape."""
    import keras

    case = CASES["identity_block"][0]
    reference = reference_tables(expected_outputs["identity_block"])[case["id"]]
    drawn = probe.SeededWeights()
    drawn.draw_ahead(probe.reference_weights(reference, "float32"))
    keras.backend.clear_session()
    x = keras.Input(tuple(case["input_shape"]))
    bigger = dict(case["kwargs"], filters=[5, 6, 8])  # the first convolution has 5 filters, not 4
    weights = _seed(keras.Model(x, solution.identity_block(x, **bigger)), reference, drawn)
    assert {w.shape for w in weights} >= {(1, 1, 8, 5), (5,)}
