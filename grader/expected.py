"""The expected outputs: the solution measured by the same probe, stored as JSON tables and HDF5 arrays.

`generate` runs in-process on `solution/` (for `make expected`); `load` reads the
files back through the same validation as kernel data. Files are written so that
two runs give byte-identical results: sorted JSON keys, no HDF5 timestamps. The
reference is computed in float64 and rounded to float32, so another CPU gives the
same values but for a rare last bit; `generate` keeps the files it finds when they
hold the same tables and arrays within FRESH_RTOL, so `make expected` changes
nothing unless the solution did.
"""

import json
import shutil
import tempfile
from pathlib import Path

import h5py
import numpy as np

import importlib
from collections.abc import Mapping

from grader import probe, versions
from grader.agreement import deviation
from grader.errors import ExpectedOutputsError, InvalidMeasurement
from grader.measurement import from_wire
from grader.places import place_names

DEFAULT_DIR = Path(__file__).parent / "expected"
# Stored arrays that differ by less than this, relative to the array's largest value, are the same
# reference: a float64 result rounded to float32 can differ by one last bit from one CPU to another.
# A thousand times finer than the grading tolerance (grader.spec.RTOL).
FRESH_RTOL = 1e-6


def measure_solution(function, version=None):
    """Measure the reference implementation of one function, as a submission is measured but in float64.

    TensorFlow's CPU kernels differ by instruction set in the last bits of float32;
    computed in float64 and rounded to float32 at the end, the stored values are the
    same on every machine. A version that prescribes no names gets its layers named by
    their place (grader.places), so feedback can name them.
    """
    version = version or versions.get()
    reference = importlib.import_module(version.reference["module"])
    measured = probe.measure_function(function, getattr(reference, function), list(version.cases[function]),
                                      dtype="float64", modes=version.modes_of(function))
    if not version.names:
        for case in measured.get("cases", []):
            places = place_names(case.get("layers", []))
            for layer in case.get("layers", []):
                layer["name"] = places.get(layer["index"], layer["name"])
    return measured


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


def load_all(directory=DEFAULT_DIR, version=None):
    """{function: FunctionMeasurement} of one version (the default one when None); `directory` is the
    expected root, each version's files in its own folder below it (the default version's in the root)."""
    version = version or versions.get()
    return {f: load(f, version.expected_dir(directory)) for f in version.functions}


class ByVersion(Mapping):
    """{version id: load_all of that version}, each loaded (and validated) when first asked for: a grade needs
    only its own notebook's version, and loading all three costs three times one."""

    def __init__(self, directory=DEFAULT_DIR):
        self.directory, self._loaded = directory, {}

    def __getitem__(self, version_id):
        if version_id not in versions.ids():
            raise KeyError(version_id)
        if version_id not in self._loaded:
            self._loaded[version_id] = load_all(self.directory, versions.get(version_id))
        return self._loaded[version_id]

    def __iter__(self):
        return iter(versions.ids())

    def __len__(self):
        return len(versions.ids())


def load_versions(directory=DEFAULT_DIR, lazy=False):
    """{version id: load_all of that version}: what a grader that may meet any version holds. `lazy`: the
    default version's loaded now (so a grader without expected outputs says so at once), the others
    when first graded (ExpectedOutputsError then)."""
    found = ByVersion(directory)
    if lazy:
        found[versions.DEFAULT]
        return found
    return {v: found[v] for v in found}


def _arrays(path):
    """Every dataset in an HDF5 file, by path."""
    found = {}

    def keep(name, item):  # visititems stops at the first callback that returns something
        if isinstance(item, h5py.Dataset):
            found[name] = np.asarray(item)

    with h5py.File(path, "r") as h5:
        h5.visititems(keep)
    return found


def differences(function, directory, other):
    """Why the expected outputs of `function` in two folders are not the same reference; [] when they are.

    The tables must be identical, the arrays within FRESH_RTOL by the grader's own measure
    (grader.agreement.deviation, relative to each array's largest value).
    """
    directory, other = Path(directory), Path(other)
    try:
        if (directory / f"{function}.json").read_text() != (other / f"{function}.json").read_text():
            return [f"{function}.json: the layer tables differ"]
        mine, theirs = _arrays(directory / f"{function}.h5"), _arrays(other / f"{function}.h5")
    except (OSError, ValueError) as exc:
        return [f"{function}: {exc}"]
    if sorted(mine) != sorted(theirs):
        return [f"{function}.h5: other arrays"]
    out = []
    for name in sorted(mine):
        if deviation(mine[name], theirs[name].astype("float64")) > FRESH_RTOL:
            out.append(f"{function}.h5: {name} differs")
    return out


def generate(root=DEFAULT_DIR, only=None):
    """Measure every version's reference (or only the version `only`) and write its expected-output
    files; return {path: 'wrote' or 'unchanged'}.

    A function's files are kept as they are when they already hold the same reference (see `differences`).
    """
    done = {}
    for version in [versions.get(only)] if only else [versions.get(v) for v in versions.ids()]:
        done.update(_generate(version, version.expected_dir(root)))
    return done


def _generate(version, directory):
    directory = Path(directory)
    done = {}
    with tempfile.TemporaryDirectory() as fresh:
        for function in version.functions:
            m = measure_solution(function, version)
            errors = [c["error"]["message"] for c in m.get("cases", []) if "error" in c]
            if m.get("missing") or errors:
                raise ExpectedOutputsError(f"the solution's {function} failed to measure: {m.get('missing') or errors}")
            save(function, m, fresh)
            same = (directory / f"{function}.h5").exists() and not differences(function, fresh, directory)
            directory.mkdir(parents=True, exist_ok=True)
            for ext in ("json", "h5"):
                if not same:
                    shutil.copyfile(Path(fresh) / f"{function}.{ext}", directory / f"{function}.{ext}")
                done[directory / f"{function}.{ext}"] = "unchanged" if same else "wrote"
    return done
