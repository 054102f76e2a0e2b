"""The expected outputs: the solution measured by the same probe, stored as JSON tables and HDF5 arrays.

`generate` runs in-process on `solution/` (for `make expected`); `load` reads the
files back through the same validation as kernel data. Files are written so that
two runs give byte-identical results: sorted JSON keys, no HDF5 timestamps.
"""

import json
from pathlib import Path

import h5py
import numpy as np

from grader import probe
from grader.errors import ExpectedOutputsError, InvalidMeasurement
from grader.measurement import from_wire
from grader.spec import CASES, FUNCTIONS

DEFAULT_DIR = Path(__file__).parent / "expected"


def measure_solution(function):
    """Measure the reference implementation of one function, exactly as a submission is measured."""
    import solution

    return probe.measure_function(function, getattr(solution, function), list(CASES[function]))


def _split_arrays(value, path, arrays):
    """Replace every numpy array by a reference into the HDF5 file."""
    if isinstance(value, np.ndarray):
        arrays[path] = value
        return {"__h5__": path}
    if isinstance(value, dict):
        return {k: _split_arrays(v, f"{path}/{k}", arrays) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_split_arrays(v, f"{path}/{i}", arrays) for i, v in enumerate(value)]
    return value


def _join_arrays(value, h5):
    if isinstance(value, dict):
        if set(value) == {"__h5__"}:
            return probe.encode(np.asarray(h5[value["__h5__"]], dtype="float32"))
        return {k: _join_arrays(v, h5) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_arrays(v, h5) for v in value]
    return value


def save(function, measurement, directory=DEFAULT_DIR):
    """Write <function>.json (tables) and <function>.h5 (arrays)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    table = _split_arrays(measurement, "", arrays)
    (directory / f"{function}.json").write_text(json.dumps(table, sort_keys=True, indent=1) + "\n")
    with h5py.File(directory / f"{function}.h5", "w", track_order=False, libver="earliest") as h5:
        for path in sorted(arrays):
            h5.create_dataset(path, data=np.asarray(arrays[path], dtype="<f4"), track_times=False)


def load_wire(function, directory=DEFAULT_DIR):
    """The stored measurement in wire format (before validation)."""
    directory = Path(directory)
    try:
        table = json.loads((directory / f"{function}.json").read_text())
        with h5py.File(directory / f"{function}.h5", "r") as h5:
            return _join_arrays(table, h5)
    except (OSError, ValueError, KeyError) as exc:
        raise ExpectedOutputsError(
            f"expected outputs for {function} are missing or unreadable in {directory} ({exc}); run `make expected`"
        ) from None


def load(function, directory=DEFAULT_DIR):
    try:
        return from_wire(load_wire(function, directory), function)
    except InvalidMeasurement as exc:
        raise ExpectedOutputsError(f"expected outputs for {function} are malformed: {exc}; run `make expected`") from None


def load_all(directory=DEFAULT_DIR):
    return {f: load(f, directory) for f in FUNCTIONS}


def generate(directory=DEFAULT_DIR):
    """Measure the solution and write every expected-output file; return the paths written."""
    written = []
    for function in FUNCTIONS:
        m = measure_solution(function)
        errors = [c["error"]["message"] for c in m.get("cases", []) if "error" in c]
        if m.get("missing") or errors:
            raise ExpectedOutputsError(f"the solution's {function} failed to measure: {m.get('missing') or errors}")
        save(function, m, directory)
        written += [Path(directory) / f"{function}.json", Path(directory) / f"{function}.h5"]
    return written
