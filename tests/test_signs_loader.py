"""signs.loader: the SIGNS files are checked, normalised and one-hot encoded."""

import h5py
import numpy as np
import pytest

from signs.loader import SignsDataError, load_signs, one_hot
from signs.make_data import write_split


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 64, 64, 3), dtype=np.uint8)


@pytest.fixture
def signs_dir(tmp_path):
    """A tiny, valid SIGNS folder: 12 train and 6 test images, labels 0..5."""
    write_split(tmp_path / "train_signs.h5", "train", _images(12), np.arange(12) % 6)
    write_split(tmp_path / "test_signs.h5", "test", _images(6, seed=1), np.arange(6)[::-1])
    return tmp_path


def test_images_are_float32_in_unit_range_and_equal_pixels_over_255(signs_dir):
    x_train, _, x_test, _, _ = load_signs(signs_dir)
    assert x_train.dtype == np.float32 and x_train.shape == (12, 64, 64, 3)
    assert x_test.shape == (6, 64, 64, 3)
    assert 0.0 <= x_train.min() and x_train.max() <= 1.0
    np.testing.assert_allclose(x_train * 255.0, _images(12), atol=1e-3)


def test_labels_are_one_hot_rows_in_file_order(signs_dir):
    _, y_train, _, y_test, classes = load_signs(signs_dir)
    assert y_train.dtype == np.float32 and y_train.shape == (12, 6)
    np.testing.assert_array_equal(y_train.sum(axis=1), np.ones(12))
    np.testing.assert_array_equal(np.argmax(y_train, axis=1), np.arange(12) % 6)
    np.testing.assert_array_equal(np.argmax(y_test, axis=1), [5, 4, 3, 2, 1, 0])
    np.testing.assert_array_equal(classes, np.arange(6))


def test_one_hot_places_a_single_one_per_row():
    np.testing.assert_array_equal(one_hot(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])


def test_missing_file_names_the_file(signs_dir):
    (signs_dir / "test_signs.h5").unlink()
    with pytest.raises(SignsDataError, match="test_signs.h5: file not found") as caught:
        load_signs(signs_dir)
    assert caught.value.path == signs_dir / "test_signs.h5"


def test_missing_folder_is_reported_for_the_training_file(tmp_path):
    with pytest.raises(SignsDataError, match="train_signs.h5: file not found"):
        load_signs(tmp_path / "nowhere")


def test_wrong_keys_are_listed(signs_dir):
    # A test-split file saved under the training file's name: every key has the wrong prefix.
    write_split(signs_dir / "train_signs.h5", "test", _images(6), np.arange(6))
    with pytest.raises(SignsDataError, match=r"train_signs.h5: missing key\(s\) \['train_set_x', 'train_set_y'\]"):
        load_signs(signs_dir)


def test_missing_list_classes_is_reported(signs_dir):
    with h5py.File(signs_dir / "test_signs.h5", "a") as f:
        del f["list_classes"]
    with pytest.raises(SignsDataError, match=r"test_signs.h5: missing key\(s\) \['list_classes'\]"):
        load_signs(signs_dir)


@pytest.mark.parametrize(
    "x, y, problem",
    [
        (np.zeros((6, 32, 32, 3), np.uint8), np.arange(6), r"train_set_x must be uint8 of shape \(N, 64, 64, 3\)"),
        (np.zeros((6, 64, 64), np.uint8), np.arange(6), r"train_set_x must be uint8"),
        (np.zeros((6, 64, 64, 3), np.float32), np.arange(6), r"got float32"),
        (np.zeros((6, 64, 64, 3), np.uint8), np.arange(5), r"train_set_y must be integers of shape \(6,\)"),
        (np.zeros((6, 64, 64, 3), np.uint8), np.arange(6) + 1, r"labels outside 0..5"),
    ],
)
def test_wrong_shapes_types_or_labels_are_explained(signs_dir, x, y, problem):
    with h5py.File(signs_dir / "train_signs.h5", "w") as f:
        f["train_set_x"], f["train_set_y"], f["list_classes"] = x, y, np.arange(6)
    with pytest.raises(SignsDataError, match=problem):
        load_signs(signs_dir)


def test_classes_must_agree_between_files(signs_dir):
    write_split(signs_dir / "test_signs.h5", "test", _images(6), np.arange(6) % 5, classes=np.arange(5))
    with pytest.raises(SignsDataError, match="differs from the training file's"):
        load_signs(signs_dir)


def test_a_file_that_is_not_hdf5_is_reported(signs_dir):
    (signs_dir / "train_signs.h5").write_text("not hdf5")
    with pytest.raises(SignsDataError, match="train_signs.h5: not a readable HDF5 file"):
        load_signs(signs_dir)
