"""signs.synthetic and signs.make_data: a deterministic stand-in in the real files' layout."""

import h5py
import numpy as np
import pytest

from signs import make_data as make_data_module
from signs.loader import load_signs
from signs.make_data import main, make_data
from signs.synthetic import draw_hand, make_synthetic_signs


def test_same_seed_gives_identical_arrays_and_another_seed_does_not():
    x1, y1 = make_synthetic_signs(3, seed=5)
    x2, y2 = make_synthetic_signs(3, seed=5)
    x3, _ = make_synthetic_signs(3, seed=6)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


def test_shapes_dtypes_and_class_balance():
    x, y = make_synthetic_signs(4, seed=0)
    assert x.shape == (24, 64, 64, 3) and x.dtype == np.uint8
    assert y.shape == (24,) and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [4] * 6)
    assert not np.array_equal(y, np.sort(y)), "classes should come shuffled, as in the real files"


def test_images_vary_and_use_the_pixel_range():
    x, _ = make_synthetic_signs(2, seed=0)
    assert x.min() < 80 and x.max() > 170
    assert len({image.tobytes() for image in x}) == len(x)
    assert x.reshape(len(x), -1).std(axis=1).min() > 5, "every image should show a hand, not a plain wall"


@pytest.mark.parametrize("seed", range(10))
def test_raised_fingers_appear_above_the_palm(seed):
    # Same pose, background and skin (same seed): five raised fingers change the upper rows.
    fist = draw_hand(0, np.random.default_rng(seed)).astype(int)
    open_hand = draw_hand(5, np.random.default_rng(seed)).astype(int)
    changed = np.abs(fist - open_hand).sum(axis=-1) > 60
    assert changed[:24].sum() > 50


def _shrink(monkeypatch):
    monkeypatch.setattr(make_data_module, "TRAIN_PER_CLASS", 3)
    monkeypatch.setattr(make_data_module, "TEST_PER_CLASS", 1)


def test_make_data_is_byte_identical_from_run_to_run(tmp_path, monkeypatch):
    _shrink(monkeypatch)
    make_data(tmp_path / "a")
    make_data(tmp_path / "b")
    for name in ("train_signs.h5", "test_signs.h5"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_make_data_writes_the_real_layout(tmp_path):
    message = make_data(tmp_path)
    assert message.startswith("wrote synthetic")
    with h5py.File(tmp_path / "train_signs.h5", "r") as f:
        assert set(f.keys()) == {"train_set_x", "train_set_y", "list_classes"}
        assert f["train_set_x"].shape == (1080, 64, 64, 3) and f["train_set_x"].dtype == np.uint8
        assert f["train_set_y"].dtype == np.int64
        np.testing.assert_array_equal(np.bincount(f["train_set_y"][()]), [180] * 6)
    with h5py.File(tmp_path / "test_signs.h5", "r") as f:
        assert set(f.keys()) == {"test_set_x", "test_set_y", "list_classes"}
        np.testing.assert_array_equal(np.bincount(f["test_set_y"][()]), [20] * 6)
    x_train, y_train, x_test, y_test, classes = load_signs(tmp_path)
    assert (len(x_train), len(x_test)) == (1080, 120)
    assert not np.array_equal(x_train[:120], x_test), "train and test must be different images"


def test_existing_files_are_kept(tmp_path, monkeypatch):
    _shrink(monkeypatch)
    make_data(tmp_path)
    real = tmp_path / "train_signs.h5"
    real.write_bytes(b"pretend these are the real photographs")
    assert make_data(tmp_path).startswith("kept the existing")
    assert real.read_bytes() == b"pretend these are the real photographs"
    assert main([str(tmp_path), "--force"]) == 0
    assert real.read_bytes() != b"pretend these are the real photographs"


def test_half_present_set_is_refused_without_force(tmp_path, monkeypatch, capsys):
    _shrink(monkeypatch)
    (tmp_path / "test_signs.h5").write_bytes(b"real test file")
    assert main([str(tmp_path)]) == 1
    assert "only" in capsys.readouterr().err
    assert not (tmp_path / "train_signs.h5").exists()
