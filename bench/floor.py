"""Row (a) of the benchmark: the floor. A bare process that imports TensorFlow, then builds and runs
the models the grader builds (every case of every function, in inference and training mode).

`floor.py VERSION` does it for a notebook version's reference, each mode as that version runs it
(a 2021 block is built twice: called with training=False, then True)."""

import importlib
import sys
import time

t0 = time.perf_counter()
import tensorflow  # noqa: E402,F401
import keras  # noqa: E402
import numpy as np  # noqa: E402

from grader import versions  # noqa: E402
from grader.probe import builds  # noqa: E402

version = versions.get(sys.argv[1] if len(sys.argv) > 1 else None)
reference = importlib.import_module(version.reference["module"])
t_import = time.perf_counter() - t0
rng = np.random.default_rng(0)
for function, cases in version.cases.items():
    fn = getattr(reference, function)
    for case in cases:
        for call, runs in builds(version.modes_of(function)):  # one build per distinct call, as the probe
            keras.backend.clear_session()
            if function == "ResNet50":
                model = fn(**case["kwargs"], **call)
            else:
                X = keras.Input(tuple(case["input_shape"]))
                model = keras.Model(X, fn(X, **case["kwargs"], **call))
            x = rng.uniform(-1, 1, (3, *model.inputs[0].shape[1:])).astype("float32")
            for _, training in runs:
                model(x) if training is None else model(x, training=training)
print(f"import {t_import:.2f} s, total {time.perf_counter() - t0:.2f} s")
