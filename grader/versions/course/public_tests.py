"""The course's `public_tests`, as the newer notebooks call them: shape checks of each graded function.

Written for the grader, so that a notebook's `import public_tests` and its test calls work; the
grader's own checks are grader.selfcheck's. The blocks are called with `training` only where
their signature has it (the 2021 notebook), so one module serves every version.
"""

import inspect

import numpy as np

__all__ = ["identity_block_test", "convolutional_block_test", "ResNet50_test"]


def _call(target, X, f, filters, **kwargs):
    if "training" in inspect.signature(target).parameters:
        kwargs["training"] = False
    return target(X, f, filters, **kwargs)


def identity_block_test(target):
    X = np.random.RandomState(1).rand(3, 4, 4, 3).astype("float32")
    out = np.asarray(_call(target, X, 2, [4, 4, 3]))
    assert out.shape == (3, 4, 4, 3), f"Wrong shape: {out.shape} for (3, 4, 4, 3)"
    assert np.all(out >= 0), "The block's output should pass through a ReLU"
    print("\033[92mAll tests passed!\033[0m")


def convolutional_block_test(target):
    X = np.random.RandomState(1).rand(3, 4, 4, 3).astype("float32")
    out = np.asarray(_call(target, X, 2, [2, 4, 6]))
    assert out.shape == (3, 2, 2, 6), f"Wrong shape: {out.shape} for (3, 2, 2, 6)"
    out = np.asarray(_call(target, X, 2, [2, 4, 6], s=1))
    assert out.shape == (3, 4, 4, 6), f"Wrong shape with s=1: {out.shape} for (3, 4, 4, 6)"
    print("\033[92mAll tests passed!\033[0m")


def ResNet50_test(target):
    model = target(input_shape=(64, 64, 3), classes=6)
    assert tuple(model.output.shape) == (None, 6), f"Wrong output shape: {tuple(model.output.shape)}"
    assert model.count_params() == 23600006, f"Wrong number of parameters: {model.count_params()} for 23,600,006"
    print("\033[92mAll tests passed!\033[0m")
