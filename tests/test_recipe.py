"""signs.recipe and solution.train: the recipe trains without touching the graded architecture."""

import dataclasses
import json

import keras
import numpy as np
import pytest

from signs.loader import one_hot
from signs.make_data import write_split
from signs.recipe import (
    RECIPE,
    KeepBestOnValidation,
    TrainingBatches,
    augment,
    learning_rate_schedule,
    predict_probabilities,
    prepare_for_training,
    set_batchnorm_momentum,
    split_validation,
)
from signs.synthetic import make_synthetic_signs

RESNET50_PARAMS = 23_600_006
STILL = dataclasses.replace(RECIPE, max_shift=0.0, max_zoom=0.0, flip=False)


def _tiny_model():
    """Two inputs -> softmax over two classes; enough to exercise the callbacks."""
    inputs = keras.Input((2,))
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))


def test_schedule_warms_up_to_the_peak_then_decays_to_zero():
    schedule = learning_rate_schedule(steps_per_epoch=10, epochs=20)
    rates = [float(schedule(step)) for step in range(0, 201, 10)]
    assert rates[0] == pytest.approx(RECIPE.peak_lr / 10)
    assert rates[2] == pytest.approx(RECIPE.peak_lr)  # end of the 2 warm-up epochs
    assert all(a >= b for a, b in zip(rates[2:], rates[3:]))
    assert rates[-1] == pytest.approx(0.0, abs=1e-9)


def test_validation_split_is_stratified_disjoint_and_reproducible():
    labels = np.repeat(np.arange(6), 180)
    x, y = np.arange(len(labels)), one_hot(labels, 6)
    (x_fit, y_fit), (x_val, y_val) = split_validation(x, y, 0.1, seed=3)
    np.testing.assert_array_equal(np.bincount(np.argmax(y_val, axis=1)), [18] * 6)
    assert len(x_fit) == 972 and set(x_fit.tolist()).isdisjoint(x_val.tolist())
    (_, _), (x_val_again, _) = split_validation(x, y, 0.1, seed=3)
    (_, _), (x_val_other, _) = split_validation(x, y, 0.1, seed=4)
    np.testing.assert_array_equal(x_val, x_val_again)
    assert not np.array_equal(x_val, x_val_other)


def test_augment_without_ranges_is_the_identity():
    x = np.random.default_rng(0).random((4, 64, 64, 3)).astype(np.float32)
    np.testing.assert_array_equal(augment(x, np.random.default_rng(1), STILL), x)


def test_augment_flip_only_mirrors_whole_images():
    x = np.random.default_rng(0).random((16, 8, 8, 3)).astype(np.float32)
    out = augment(x, np.random.default_rng(1), dataclasses.replace(STILL, flip=True))
    mirrored = [np.array_equal(o, i[:, ::-1]) for o, i in zip(out, x)]
    kept = [np.array_equal(o, i) for o, i in zip(out, x)]
    assert all(m or k for m, k in zip(mirrored, kept)) and any(mirrored) and any(kept)


def test_augment_shifts_and_zooms_keep_shape_dtype_and_pixel_values():
    x = np.random.default_rng(0).random((8, 64, 64, 3)).astype(np.float32)
    out = augment(x, np.random.default_rng(1), RECIPE)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not np.array_equal(out, x)
    assert set(np.unique(out[0])) <= set(np.unique(x[0])), "nearest-neighbour: no new pixel values"


def test_training_batches_are_full_reshuffled_and_reproducible():
    x = np.arange(70, dtype=np.float32).reshape(70, 1, 1, 1) * np.ones((1, 4, 4, 3), np.float32)
    y = one_hot(np.arange(70) % 6, 6)
    batches = TrainingBatches(x, y, seed=0, recipe=STILL)
    assert len(batches) == 2  # 70 // 32: the partial batch is dropped
    first_x, first_y = batches[0]
    assert first_x.shape == (32, 4, 4, 3) and first_y.shape == (32, 6)
    np.testing.assert_array_equal(first_y, y[first_x[:, 0, 0, 0].astype(int)])  # pairs stay together
    np.testing.assert_array_equal(TrainingBatches(x, y, seed=0, recipe=STILL)[0][0], first_x)
    batches.on_epoch_end()
    assert not np.array_equal(batches[0][0], first_x)


def test_training_batches_need_one_full_batch():
    with pytest.raises(ValueError, match="at least batch_size=32"):
        TrainingBatches(np.zeros((10, 4, 4, 3)), np.zeros((10, 6)), seed=0)


def test_predict_probabilities_pads_to_full_batches_and_cuts_back():
    model = _tiny_model()
    x = np.random.default_rng(0).random((5, 2)).astype(np.float32)
    probabilities = predict_probabilities(model, x, batch_size=4)
    np.testing.assert_allclose(probabilities, model.predict(x, verbose=0), rtol=1e-5)


def test_keep_best_restores_the_best_validation_epoch_and_ignores_watched_sets():
    model = _tiny_model()
    x_val = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    y_val = np.eye(2, dtype=np.float32)
    good = [np.eye(2, dtype=np.float32) * 5, np.zeros(2, np.float32)]
    bad = [good[0][:, ::-1].copy(), good[1]]
    # The watched 'test' set is labelled so that the bad weights score best on it.
    keep = KeepBestOnValidation(x_val, y_val, watch={"test": (x_val, y_val[::-1])}, batch_size=2)
    keep.set_model(model)
    for epoch, weights in enumerate([bad, good, bad]):
        model.set_weights(weights)
        logs = {}
        keep.on_epoch_end(epoch, logs)
        assert logs["val_accuracy"] == (1.0 if weights is good else 0.0)
        assert logs["test_accuracy"] == (0.0 if weights is good else 1.0)
    keep.on_train_end()
    assert keep.best_epoch == 1
    np.testing.assert_array_equal(model.get_weights()[0], good[0])


def test_set_batchnorm_momentum_reaches_nested_models():
    inner = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    outer = keras.Sequential([keras.Input((4,)), inner, keras.layers.BatchNormalization()])
    assert set_batchnorm_momentum(outer, 0.5) == 2
    assert inner.layers[0].momentum == 0.5 and outer.layers[-1].momentum == 0.5


def _structure(model):
    """Layer types in order, with the names the assignment prescribes (others are counters)."""
    prescribed = ("conv1", "bn_conv1", "res", "bn", "avg_pool", "fc")
    return [(type(layer).__name__, layer.name if layer.name.startswith(prescribed) else None) for layer in model.layers]


@pytest.mark.slow
def test_prepare_for_training_keeps_the_graded_architecture():
    from solution import ResNet50

    reference = ResNet50()
    model = prepare_for_training(ResNet50(), steps_per_epoch=30, epochs=20)
    assert model.count_params() == RESNET50_PARAMS
    assert _structure(model) == _structure(reference)
    assert [w.shape for w in model.weights] == [w.shape for w in reference.weights]
    batchnorms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert len(batchnorms) == 53 and {layer.momentum for layer in batchnorms} == {RECIPE.bn_momentum}
    assert isinstance(model.optimizer, keras.optimizers.AdamW)
    assert model.loss.get_config()["label_smoothing"] == RECIPE.label_smoothing


@pytest.mark.slow
def test_train_command_runs_one_epoch_on_synthetic_images(tmp_path):
    from solution.train import main

    data = tmp_path / "data"
    x, y = make_synthetic_signs(7, seed=0)  # 42 images: 36 to fit (one batch of 32), 6 to validate
    write_split(data / "train_signs.h5", "train", x, y)
    write_split(data / "test_signs.h5", "test", x[:6], y[:6])
    out = tmp_path / "runs"
    assert main(["--data", str(data), "--epochs", "1", "--seed", "0", "--out", str(out), "--verbose", "0"]) == 0

    metrics = json.loads((out / "metrics_seed0.json").read_text())
    assert metrics["param_count"] == RESNET50_PARAMS
    assert metrics["images"] == {"fit": 36, "validation": 6, "test": 6}
    assert metrics["chosen_epoch"] == 1 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert np.isfinite(metrics["curves"]["loss"][0])
    assert (out / "curves_seed0.png").read_bytes()[:4] == b"\x89PNG"
    saved = keras.saving.load_model(out / "resnet50_seed0.keras")
    assert saved.count_params() == RESNET50_PARAMS
    assert saved.get_layer("bn_conv1").momentum == RECIPE.bn_momentum
