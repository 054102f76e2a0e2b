"""What is graded: the functions, the calls that exercise their arguments, and the points.

Plain data, shared by `make expected` and grading, so both measure the same calls.
Filter counts differ within each case, so that filters given in the wrong order
change shapes and parameter counts; f, s, stage, block and classes each take two
values, so that hard-coding any of them loses points.
"""

ASPECTS = ("names", "shapes", "params", "activations")

FUNCTIONS = ("identity_block", "convolutional_block", "ResNet50")

# Call signatures the notebook's stubs and the solution share (checked by a test).
SIGNATURES = {
    "identity_block": "(X, f, filters, stage, block)",
    "convolutional_block": "(X, f, filters, stage, block, s=2)",
    "ResNet50": "(input_shape=(64, 64, 3), classes=6)",
}

CASES = {
    "identity_block": (
        {"id": "f=2", "input_shape": [5, 5, 8], "kwargs": {"f": 2, "filters": [4, 6, 8], "stage": 2, "block": "b"}},
        {"id": "f=3", "input_shape": [6, 6, 12], "kwargs": {"f": 3, "filters": [6, 5, 12], "stage": 4, "block": "e"}},
    ),
    "convolutional_block": (
        {"id": "s=2", "input_shape": [7, 7, 6], "kwargs": {"f": 3, "filters": [4, 5, 10], "stage": 3, "block": "a", "s": 2}},
        {"id": "s=1", "input_shape": [6, 6, 6], "kwargs": {"f": 2, "filters": [3, 5, 7], "stage": 2, "block": "a", "s": 1}},
        {"id": "s omitted", "input_shape": [5, 5, 4], "kwargs": {"f": 3, "filters": [2, 3, 6], "stage": 5, "block": "b"}},
    ),
    "ResNet50": (
        {"id": "defaults", "kwargs": {}},
        {"id": "classes=3", "kwargs": {"input_shape": [64, 64, 3], "classes": 3}},
    ),
}

# Points per function and aspect; they add up to 100.
POINTS = {
    "identity_block": {"names": 5, "shapes": 8, "params": 7, "activations": 10},
    "convolutional_block": {"names": 5, "shapes": 10, "params": 8, "activations": 12},
    "ResNet50": {"names": 5, "shapes": 10, "params": 10, "activations": 10},
}

# Relative tolerance for activations, scaled by the largest reference magnitude.
RTOL = 1e-3
