"""Row (a) of the benchmark: the floor. A bare process that imports TensorFlow, then builds and runs
the models the grader builds (every case of every function, in inference and training mode)."""

import time

t0 = time.perf_counter()
import tensorflow  # noqa: E402,F401
import keras  # noqa: E402
import numpy as np  # noqa: E402

import solution  # noqa: E402
from grader.spec import CASES  # noqa: E402

t_import = time.perf_counter() - t0
rng = np.random.default_rng(0)
for function, cases in CASES.items():
    fn = getattr(solution, function)
    for case in cases:
        keras.backend.clear_session()
        if function == "ResNet50":
            model = fn(**case["kwargs"])
        else:
            X = keras.Input(tuple(case["input_shape"]))
            model = keras.Model(X, fn(X, **case["kwargs"]))
        x = rng.uniform(-1, 1, (3, *model.inputs[0].shape[1:])).astype("float32")
        model(x, training=False)
        model(x, training=True)
print(f"import {t_import:.2f} s, total {time.perf_counter() - t0:.2f} s")
