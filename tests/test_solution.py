"""The reference implementation matches the course's published figures."""

import pytest

from solution import ResNet50


@pytest.fixture(scope="module")
def model():
    return ResNet50()


def test_parameter_counts_match_the_course(model):
    assert model.count_params() == 23_600_006
    assert sum(int(w.numpy().size) for w in model.non_trainable_weights) == 53_120


def test_output_shape_and_model_name(model):
    assert tuple(model.output.shape) == (None, 6)
    assert model.name == "ResNet50"


def test_prescribed_layer_names(model):
    names = {layer.name for layer in model.layers}
    for name in ("conv1", "bn_conv1", "res2a_branch1", "bn2a_branch1", "res2c_branch2c", "res4f_branch2b",
                 "bn5c_branch2c", "avg_pool", "fc6"):
        assert name in names
    assert not any(n.endswith("branchl") for n in names)


def test_classes_names_the_dense_layer():
    m = ResNet50(classes=3)
    assert m.layers[-1].name == "fc3"
    assert tuple(m.output.shape) == (None, 3)
