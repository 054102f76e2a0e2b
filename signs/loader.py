"""Load the SIGNS data set from its two HDF5 files, checked, normalised and one-hot encoded.

The layout is the course's: `train_signs.h5` holds `train_set_x` (uint8, N x 64 x 64 x 3),
`train_set_y` (int, N) and `list_classes`; `test_signs.h5` the same with the `test_` prefix.
"""

from pathlib import Path

import h5py
import numpy as np

FILES = {"train": "train_signs.h5", "test": "test_signs.h5"}
IMAGE_SHAPE = (64, 64, 3)


class SignsDataError(Exception):
    """A SIGNS file is missing or not in the expected layout; says which file and why."""

    def __init__(self, path, problem):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def load_signs(data_dir):
    """Load both splits of SIGNS from `data_dir`, ready for training.

    Args:
        data_dir: folder holding `train_signs.h5` and `test_signs.h5`.

    Returns:
        (x_train, y_train, x_test, y_test, classes): images as float32 in [0, 1] of shape
        (N, 64, 64, 3), labels one-hot as float32 of shape (N, len(classes)), and the class
        labels (int64 array, e.g. [0 1 2 3 4 5]).

    Raises:
        SignsDataError: a file is missing, lacks a key, or holds arrays of the wrong shape,
            type or labels.
    """
    data_dir = Path(data_dir)
    x_train, y_train, classes = read_split(data_dir / FILES["train"], "train")
    x_test, y_test, test_classes = read_split(data_dir / FILES["test"], "test")
    if not np.array_equal(classes, test_classes):
        raise SignsDataError(
            data_dir / FILES["test"],
            f"list_classes {test_classes.tolist()} differs from the training file's {classes.tolist()}",
        )
    n_classes = len(classes)
    return (
        normalise(x_train),
        one_hot(y_train, n_classes),
        normalise(x_test),
        one_hot(y_test, n_classes),
        classes,
    )


def read_split(path, split):
    """Read and check one file's raw arrays: (x uint8, y int64, classes int64).

    `split` is 'train' or 'test', the prefix of the file's keys.
    """
    path = Path(path)
    if not path.is_file():
        raise SignsDataError(path, "file not found (run `make data` for a synthetic stand-in)")
    keys = (f"{split}_set_x", f"{split}_set_y", "list_classes")
    try:
        with h5py.File(path, "r") as f:
            missing = [key for key in keys if key not in f]
            if missing:
                raise SignsDataError(path, f"missing key(s) {missing}; found {sorted(f.keys())}")
            x, y, classes = (np.asarray(f[key][()]) for key in keys)
    except OSError as error:
        raise SignsDataError(path, f"not a readable HDF5 file ({error})") from error
    _check_arrays(path, keys, x, y, classes)
    return x, y.astype(np.int64), classes.astype(np.int64)


def _check_arrays(path, keys, x, y, classes):
    """Raise SignsDataError unless x, y and classes have the layout load_signs relies on."""
    x_key, y_key, _ = keys
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != IMAGE_SHAPE:
        raise SignsDataError(
            path, f"{x_key} must be uint8 of shape (N, 64, 64, 3), got {x.dtype} {x.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer) or y.shape != (x.shape[0],):
        raise SignsDataError(
            path, f"{y_key} must be integers of shape ({x.shape[0]},), got {y.dtype} {y.shape}"
        )
    if not np.issubdtype(classes.dtype, np.integer) or classes.ndim != 1 or len(classes) == 0:
        raise SignsDataError(path, f"list_classes must be a 1-D integer array, got {classes!r}")
    if y.size and (y.min() < 0 or y.max() >= len(classes)):
        raise SignsDataError(
            path, f"{y_key} holds labels outside 0..{len(classes) - 1}: {sorted(set(y.tolist()))}"
        )


def normalise(x):
    """uint8 pixels to float32 in [0, 1], the scale the network is trained on."""
    return (np.asarray(x, dtype=np.float32) / 255.0).astype(np.float32)


def one_hot(y, n_classes):
    """Integer labels (N,) to float32 one-hot rows (N, n_classes), as categorical cross-entropy wants."""
    return np.eye(n_classes, dtype=np.float32)[np.asarray(y).reshape(-1)]
