"""The course's `resnets_utils`, as the newer notebooks' `from resnets_utils import *` expects it.

Written for the grader (not the course's file): the data helpers the notebook calls, and the
Keras names the import brings with it (the current notebook gets BatchNormalization only from
here). Nothing runs on import: the grader loads it into every kernel that grades these versions.
"""

import math

import h5py
import numpy as np
import tensorflow as tf
from keras.layers import (Activation, Add, AveragePooling2D, BatchNormalization, Conv2D, Dense, Flatten,
                          GlobalMaxPooling2D, Input, MaxPooling2D, ZeroPadding2D)
from keras.models import Model, load_model

__all__ = ["math", "h5py", "np", "tf", "Activation", "Add", "AveragePooling2D", "BatchNormalization", "Conv2D",
           "Dense", "Flatten", "GlobalMaxPooling2D", "Input", "MaxPooling2D", "ZeroPadding2D", "Model", "load_model",
           "load_dataset", "convert_to_one_hot", "random_mini_batches"]


def load_dataset(folder="datasets"):
    """The SIGNS sets: (train x, train y of shape (1, m), test x, test y, classes), from FOLDER/*_signs.h5."""
    with h5py.File(f"{folder}/train_signs.h5", "r") as train, h5py.File(f"{folder}/test_signs.h5", "r") as test:
        train_x, train_y = np.array(train["train_set_x"][:]), np.array(train["train_set_y"][:])
        test_x, test_y = np.array(test["test_set_x"][:]), np.array(test["test_set_y"][:])
        classes = np.array(test["list_classes"][:])
    return train_x, train_y.reshape((1, -1)), test_x, test_y.reshape((1, -1)), classes


def convert_to_one_hot(Y, C):
    """Labels of shape (1, m) as one-hot columns: shape (C, m)."""
    return np.eye(C)[Y.reshape(-1)].T


def random_mini_batches(X, Y, mini_batch_size=64, seed=0):
    """Shuffled (X, Y) mini-batches of the examples (first axis), the last one possibly smaller."""
    m = X.shape[0]
    order = np.random.RandomState(seed).permutation(m)
    X, Y = X[order], Y[order]
    return [(X[k:k + mini_batch_size], Y[k:k + mini_batch_size]) for k in range(0, m, mini_batch_size)]
