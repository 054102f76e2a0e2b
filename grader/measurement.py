"""Typed, validated measurements: the only form in which kernel data enters the grader.

`from_wire` accepts the JSON the probe emits (or the expected outputs on disk, which
use the same format) and checks every field's type and size, so that nothing the
student's kernel hands back is trusted beyond being plain, bounded data.
"""

import base64
import binascii
import re
from dataclasses import dataclass, field

import numpy as np

from grader.errors import InvalidMeasurement

MODES = ("inference", "training")
MAX_ARRAY_ELEMENTS = 2_000_000
MAX_LAYERS = 2_000
MAX_TEXT = 4_000


@dataclass(frozen=True)
class Layer:
    index: int
    name: str
    class_name: str
    kind: str
    config: dict
    output_shape: tuple
    trainable_params: int
    non_trainable_params: int
    parents: tuple
    key: str

    @property
    def params(self):
        return self.trainable_params + self.non_trainable_params


@dataclass(frozen=True)
class Fingerprint:
    channel: np.ndarray
    spatial: np.ndarray


@dataclass(frozen=True)
class ModeActivations:
    output: np.ndarray
    layers: dict  # layer index -> Fingerprint


@dataclass(frozen=True)
class CaseMeasurement:
    case: str
    call: str
    layers: tuple = ()
    output_shape: tuple = ()
    trainable_params: int = 0
    non_trainable_params: int = 0
    activations: dict = field(default_factory=dict)  # mode -> ModeActivations
    error: str = ""
    error_type: str = ""  # the exception's class name, with `error`


@dataclass(frozen=True)
class FunctionMeasurement:
    function: str
    cases: tuple = ()
    missing: str = ""
    limit: str = ""  # with `missing`: the kind of limit it ran into (set by the grader, never read from a kernel)


def _fail(path, what):
    raise InvalidMeasurement(f"invalid measurement at {path}: {what}")


def _get(obj, key, kind, path):
    if not isinstance(obj, dict) or key not in obj:
        _fail(path, f"missing field {key!r}")
    value = obj[key]
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        _fail(f"{path}.{key}", f"expected an integer, found {type(value).__name__}")
    if kind is not int and not isinstance(value, kind):
        _fail(f"{path}.{key}", f"expected {kind}, found {type(value).__name__}")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        value = value[:MAX_TEXT]
    return value


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\[[0-9;]*m")


def _text(obj, key, path):
    """Student-controlled text, stripped of terminal escapes and cut to its first paragraph."""
    text = ANSI.sub("", _get(obj, key, str, path))
    paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
    first = paragraphs[0] if paragraphs else ""
    if len(paragraphs) > 1 and "Exception encountered" in first:  # Keras puts the cause in paragraph two
        first += " " + paragraphs[1]
    return " ".join(first.split())[:600]


def _shape(value, path):
    if not isinstance(value, list) or len(value) > 8:
        _fail(path, "expected a shape (a short list)")
    for d in value:
        if d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 0):
            _fail(path, f"bad dimension {d!r}")
    return tuple(value)


def _config(value, path):
    """Configs hold only scalars and (nested) lists of scalars."""
    if not isinstance(value, dict) or len(value) > 32:
        _fail(path, "expected a small dict")

    def plain(v, depth=0):
        if isinstance(v, (str, int, float, bool)) or v is None:
            return v
        if isinstance(v, list) and depth < 3 and len(v) <= 16:
            return tuple(plain(x, depth + 1) for x in v)
        _fail(path, f"unsupported config value {type(v).__name__}")

    return {str(k): plain(v) for k, v in value.items()}


def _array(value, path):
    if not isinstance(value, dict) or "__array__" not in value or "shape" not in value:
        _fail(path, "expected an encoded array")
    shape = _shape(value["shape"], f"{path}.shape")
    if any(d is None for d in shape):
        _fail(path, "array shape has an unknown dimension")
    size = int(np.prod(shape)) if shape else 1
    if size > MAX_ARRAY_ELEMENTS:
        _fail(path, f"array of {size} elements is too large")
    raw = value["__array__"]
    if not isinstance(raw, str):
        _fail(path, "array data is not text")
    try:
        data = base64.b64decode(raw.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        _fail(path, "array data is not base64")
    if len(data) != size * 4:
        _fail(path, f"array data has {len(data)} bytes, shape {shape} needs {size * 4}")
    return np.frombuffer(data, dtype="<f4").reshape(shape).astype("float32")


def _layer(obj, i, path):
    p = f"{path}[{i}]"
    parents = _get(obj, "parents", list, p)
    if any(isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < i for x in parents):
        _fail(f"{p}.parents", "parents must be indices of earlier layers")
    index = _get(obj, "index", int, p)
    if index != i:
        _fail(f"{p}.index", f"expected {i}, found {index}")
    counts = [_get(obj, k, int, p) for k in ("trainable_params", "non_trainable_params")]
    if min(counts) < 0:
        _fail(p, "negative parameter count")
    return Layer(
        index=i,
        name=_get(obj, "name", str, p),
        class_name=_get(obj, "class_name", str, p),
        kind=_get(obj, "kind", str, p),
        config=_config(_get(obj, "config", dict, p), f"{p}.config"),
        output_shape=_shape(_get(obj, "output_shape", list, p), f"{p}.output_shape"),
        trainable_params=counts[0],
        non_trainable_params=counts[1],
        parents=tuple(parents),
        key=_get(obj, "key", str, p),
    )


def _activations(obj, n_layers, path):
    result = {}
    for mode in MODES:
        m = _get(obj, mode, dict, path)
        layers = _get(m, "layers", dict, f"{path}.{mode}")
        prints = {}
        for k, fp in layers.items():
            if not k.isdigit() or int(k) >= n_layers:
                _fail(f"{path}.{mode}.layers", f"unknown layer index {k!r}")
            q = f"{path}.{mode}.layers[{k}]"
            prints[int(k)] = Fingerprint(_array(_get(fp, "channel", dict, q), q), _array(_get(fp, "spatial", dict, q), q))
        result[mode] = ModeActivations(_array(_get(m, "output", dict, f"{path}.{mode}"), f"{path}.{mode}.output"), prints)
    return result


def _case(obj, path):
    case = _get(obj, "case", str, path)
    call = _get(obj, "call", str, path)
    if "error" in obj:
        err = _get(obj, "error", dict, path)
        message = _text(err, "message", f"{path}.error")
        layers = obj.get("layers", [])
        if not isinstance(layers, list) or len(layers) > MAX_LAYERS:
            _fail(f"{path}.layers", "expected a list of layers")
        kind = _text(err, "type", f"{path}.error")[:100] if "type" in err else ""
        return CaseMeasurement(case, call, tuple(_layer(x, i, f"{path}.layers") for i, x in enumerate(layers)),
                               error=message, error_type=kind)
    layers = _get(obj, "layers", list, path)
    if len(layers) > MAX_LAYERS:
        _fail(f"{path}.layers", f"{len(layers)} layers is more than {MAX_LAYERS}")
    parsed = tuple(_layer(x, i, f"{path}.layers") for i, x in enumerate(layers))
    return CaseMeasurement(
        case=case,
        call=call,
        layers=parsed,
        output_shape=_shape(_get(obj, "output_shape", list, path), f"{path}.output_shape"),
        trainable_params=_get(obj, "trainable_params", int, path),
        non_trainable_params=_get(obj, "non_trainable_params", int, path),
        activations=_activations(_get(obj, "activations", dict, path), len(parsed), f"{path}.activations"),
    )


def from_wire(obj, function=None):
    """Validate one function's measurement (probe JSON) and return it typed."""
    name = _get(obj, "function", str, "measurement")
    if function is not None and name != function:
        _fail("measurement.function", f"expected {function!r}, found {name!r}")
    if "missing" in obj:
        return FunctionMeasurement(name, missing=_get(obj, "missing", str, "measurement"))
    cases = _get(obj, "cases", list, "measurement")
    if len(cases) > 16:
        _fail("measurement.cases", "too many cases")
    return FunctionMeasurement(name, tuple(_case(c, f"measurement.cases[{i}]") for i, c in enumerate(cases)))
