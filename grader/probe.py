"""Measure a graded function: its layer table and fixed-seed activations, as plain data.

This one module measures both sides the same way: the solution (in-process, for
`make expected`), a submission (inside the grading kernel, whose source this file
is sent into) and a student's own work (the notebook's self-checks). So it must
stay self-contained: standard library, numpy and keras only, no grader imports.
It measures; it never judges. Verdicts are made by grader.checks in the trusted
process, from the plain data this module returns.
"""

import base64
import hashlib
import json
import traceback

import numpy as np

WIRE_MIMETYPE = "application/vnd.resnet-grader.v1+json"
WEIGHT_SEED = 1234
INPUT_SEED = 4321
BATCH = 3

_RELU_OPS = {"relu", "relu6"}


# ----------------------------------------------------------------------------- layer table


def _kind(op):
    """A name for what a graph operation computes, so equivalent spellings agree.

    `ReLU()`, `Activation('relu')` and `keras.ops.relu` are all 'relu';
    `Add()` and `x + y` are both 'add'.
    """
    cls = type(op).__name__
    if cls == "Activation":
        act = op.get_config().get("activation")
        return "relu" if act == "relu" else f"activation:{act}"
    if cls == "ReLU":
        cfg = op.get_config()
        plain = not cfg.get("max_value") and not cfg.get("negative_slope") and not cfg.get("threshold")
        return "relu" if plain else "relu:clipped"
    table = {
        "Conv2D": "conv2d",
        "BatchNormalization": "batchnorm",
        "Add": "add",
        "ZeroPadding2D": "zeropad",
        "MaxPooling2D": "maxpool",
        "AveragePooling2D": "avgpool",
        "Flatten": "flatten",
        "Dense": "dense",
        "InputLayer": "input",
        "Relu": "relu",
    }
    return table.get(cls, cls.lower())


def _ints(value):
    if isinstance(value, (int, np.integer)):
        return [int(value)]
    return [int(v) for v in value]


def _config(op, kind, input_rank):
    """The hyperparameters that decide a layer's behaviour, normalised (int or tuple alike)."""
    if not hasattr(op, "get_config"):
        return {}
    cfg = op.get_config()
    if kind == "conv2d":
        return {
            "filters": int(cfg["filters"]),
            "kernel_size": _ints(cfg["kernel_size"]),
            "strides": _ints(cfg["strides"]),
            "padding": str(cfg["padding"]).lower(),
            "activation": str(cfg.get("activation")),
            "use_bias": bool(cfg.get("use_bias", True)),
        }
    if kind == "batchnorm":
        axes = [a % input_rank if input_rank else a for a in _ints(cfg["axis"])]
        return {"axis": axes}
    if kind in ("maxpool", "avgpool"):
        return {
            "pool_size": _ints(cfg["pool_size"]),
            "strides": _ints(cfg["strides"] if cfg.get("strides") is not None else cfg["pool_size"]),
            "padding": str(cfg["padding"]).lower(),
        }
    if kind == "zeropad":
        return {"padding": [_ints(p) for p in cfg["padding"]]}
    if kind == "dense":
        return {"units": int(cfg["units"]), "activation": str(cfg.get("activation"))}
    return {}


def _shape(tensor):
    return [None if d is None else int(d) for d in tensor.shape]


def graph_nodes(model):
    """The model's nodes, parents before children, in a stable order."""
    by_depth = model._nodes_by_depth  # Keras 3 functional graph; depth 0 is the output
    nodes = []
    for depth in sorted(by_depth, reverse=True):
        nodes.extend(by_depth[depth])
    return nodes


def nodes_built_from(tensor):
    """The nodes built on top of an input so far, parents first.

    Used when a block fails part-way (say, an Add of mismatched shapes): the
    layers built before the failure can still be compared, so the feedback can
    name the layer that went wrong rather than only Keras's error.
    """
    start = tensor._keras_history.operation._inbound_nodes[0]
    found, stack = {id(start): start}, [start]
    while stack:
        for child in stack.pop().operation._outbound_nodes:
            if id(child) not in found:
                found[id(child)] = child
                stack.append(child)
    ordered, placed = [], set()
    pending = list(found.values())
    while pending:
        ready = [n for n in pending if all(id(p) in placed or id(p) not in found for p in n.parent_nodes)]
        if not ready:
            break
        for n in ready:
            ordered.append(n)
            placed.add(id(n))
        pending = [n for n in pending if id(n) not in placed]
    return ordered


def _param_counts(op):
    trainable = sum(int(np.prod(w.shape)) for w in getattr(op, "trainable_weights", []))
    frozen = sum(int(np.prod(w.shape)) for w in getattr(op, "non_trainable_weights", []))
    return trainable, frozen


def layer_table(nodes):
    """One plain record per graph node: name, kind, config, output shape, parameters, parents.

    `key` is a hash of what the node computes from the input (its kind, config and
    the keys of its parents, order-free), independent of layer names and of the
    order the student built the branches in. Weights are seeded from it.
    """
    index = {id(n): i for i, n in enumerate(nodes)}
    records, keys, seen_ops = [], [], set()
    for i, node in enumerate(nodes):
        op = node.operation
        kind = _kind(op)
        parents = [index[id(p)] for p in node.parent_nodes if id(p) in index]
        in_rank = len(node.parent_nodes[0].outputs[0].shape) if node.parent_nodes else 0
        config = _config(op, kind, in_rank)
        trainable, frozen = (0, 0) if id(op) in seen_ops else _param_counts(op)
        seen_ops.add(id(op))
        weight_shapes = [_ints(w.shape) for w in getattr(op, "weights", [])]
        blob = json.dumps([kind, config, weight_shapes, sorted(keys[p] for p in parents)])
        keys.append(hashlib.sha256(blob.encode()).hexdigest()[:16])
        records.append(
            {
                "index": i,
                "name": str(getattr(op, "name", "")),
                "class_name": type(op).__name__,
                "kind": kind,
                "config": config,
                "output_shape": _shape(node.outputs[0]),
                "trainable_params": trainable,
                "non_trainable_params": frozen,
                "parents": parents,
                "key": keys[-1],
            }
        )
    return records


# ----------------------------------------------------------------------------- seeded weights


def _rng(key, weight_index, occurrence):
    digest = hashlib.sha256(f"{WEIGHT_SEED}/{key}/{occurrence}/{weight_index}".encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def _seeded_value(var_name, shape, rng):
    """Values that keep activations in a useful range through 50 layers (no saturated softmax)."""
    shape = tuple(int(d) for d in shape)
    if var_name == "kernel":
        fan_in = int(np.prod(shape[:-1])) or 1
        return rng.normal(0.0, np.sqrt(1.0 / fan_in), shape)
    if var_name == "gamma":
        return rng.uniform(0.3, 0.8, shape)
    if var_name == "moving_variance":
        return rng.uniform(0.8, 1.6, shape)
    if var_name in ("bias", "beta", "moving_mean"):
        return rng.normal(0.0, 0.1, shape)
    return rng.normal(0.0, 0.1, shape)


def set_seeded_weights(nodes, records):
    """Set every weight from a fixed seed keyed by structure, so the student's initializers play no part."""
    done, occurrences = set(), {}
    for node, record in zip(nodes, records):
        op = node.operation
        if id(op) in done:
            continue
        done.add(id(op))
        occurrence = occurrences.get(record["key"], 0)
        occurrences[record["key"]] = occurrence + 1
        for w_index, var in enumerate(getattr(op, "weights", [])):
            name = str(getattr(var, "name", "")).split("/")[-1].split(":")[0]
            value = _seeded_value(name, var.shape, _rng(record["key"], w_index, occurrence))
            var.assign(value.astype(np.dtype(getattr(var, "dtype", "float32"))))


# ----------------------------------------------------------------------------- activations


def seeded_input(shape):
    """The fixed input every measurement uses: BATCH samples of the given shape."""
    rng = np.random.default_rng(INPUT_SEED)
    return rng.uniform(-1.0, 1.0, (BATCH, *shape)).astype("float32")


def fingerprint(array):
    """A compact summary of one activation: per-channel and per-position means."""
    a = np.asarray(array, dtype="float32")
    if a.ndim < 2:
        return {"channel": a.reshape(-1), "spatial": np.zeros(0, "float32")}
    channel = a.reshape(-1, a.shape[-1]).mean(axis=0)
    spatial = a.mean(axis=(0, a.ndim - 1)).reshape(-1) if a.ndim > 2 else np.zeros(0, "float32")
    return {"channel": channel.astype("float32"), "spatial": spatial.astype("float32")}


def activations(model, nodes, x):
    """Outputs of every node, in inference mode and then in training mode (BatchNorm on batch statistics)."""
    import keras

    probed = [i for i, n in enumerate(nodes) if type(n.operation).__name__ != "InputLayer"]
    tap = keras.Model(model.inputs, [nodes[i].outputs[0] for i in probed] + [model.outputs[0]])
    result = {}
    for mode, training in (("inference", False), ("training", True)):
        arrays = [np.asarray(keras.ops.convert_to_numpy(o), dtype="float32") for o in tap([x], training=training)]
        result[mode] = {
            "output": arrays[-1],
            "layers": {str(i): fingerprint(a) for i, a in zip(probed, arrays)},
        }
    return result


# ----------------------------------------------------------------------------- one case


def _describe_call(function_name, case):
    args = ", ".join(f"{k}={v!r}" for k, v in case["kwargs"].items())
    if case.get("input_shape") and function_name != "ResNet50":
        return f"{function_name}(X of shape {tuple([None] + case['input_shape'])}, {args})"
    return f"{function_name}({args})"


def _error(exc, where):
    lines = traceback.format_exception_only(type(exc), exc)
    return {"type": type(exc).__name__, "message": "".join(lines).strip()[-2000:], "where": where}


def _input_of(tensor):
    """Walk back from a symbolic tensor to the Input it was built from."""
    node = tensor._keras_history.operation._inbound_nodes[tensor._keras_history.node_index]
    while node.parent_nodes:
        node = node.parent_nodes[0]
    return node.outputs[0]


def measure_case(function_name, fn, case, seen=None):
    """Build the function's model for one case, seed its weights, and measure it.

    `seen` collects tensors handed to the blocks while ResNet50 is built, so that
    if building fails, the layers built so far can still be reported.
    """
    import keras

    call = _describe_call(function_name, case)
    out = {"case": case["id"], "call": call}
    X = None
    try:
        keras.backend.clear_session()
        if function_name == "ResNet50":
            model = fn(**case["kwargs"])
            if not isinstance(model, keras.Model):
                raise TypeError(f"{function_name} returned {type(model).__name__}, expected a keras.Model")
            in_shape = [int(d) for d in model.inputs[0].shape[1:]]
        else:
            X = keras.Input(tuple(case["input_shape"]))
            Y = fn(X, **case["kwargs"])
            if not isinstance(Y, keras.KerasTensor):
                raise TypeError(f"{function_name} returned {type(Y).__name__}, expected the block's output tensor")
            model = keras.Model(X, Y)
            in_shape = list(case["input_shape"])
    except (Exception, SystemExit) as exc:  # the student's code failed: that is data, not a crash
        out["error"] = _error(exc, call)
        try:
            if X is None and seen:
                X = _input_of(seen[0])
            if X is not None:
                out["layers"] = layer_table(nodes_built_from(X))
        except Exception:
            pass
        return out
    try:
        nodes = graph_nodes(model)
        records = layer_table(nodes)
        set_seeded_weights(nodes, records)
        out["layers"] = records
        out["output_shape"] = _shape(model.outputs[0])
        out["trainable_params"] = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
        out["non_trainable_params"] = int(sum(int(np.prod(w.shape)) for w in model.non_trainable_weights))
        out["activations"] = activations(model, nodes, seeded_input(in_shape))
    except Exception as exc:
        out["error"] = _error(exc, f"measuring {call}")
    return out


BLOCK_NAMES = ("identity_block", "convolutional_block")


def measure_function(function_name, fn, cases, blocks=None):
    """Measure every case of one graded function.

    `blocks` maps block names to correct implementations that replace the
    student's own while ResNet50 runs, so a block's mistake costs points once.
    """
    if not callable(fn):
        return {"function": function_name, "missing": f"{function_name} is not defined"}
    namespace = getattr(fn, "__globals__", {})
    saved = {name: namespace.get(name) for name in BLOCK_NAMES}
    seen = []

    def recording(block):
        def wrapper(X, *args, **kwargs):
            seen.append(X)
            return block(X, *args, **kwargs)
        return wrapper

    if function_name == "ResNet50":
        for name in BLOCK_NAMES:
            block = (blocks or {}).get(name, saved[name])
            if callable(block):
                namespace[name] = recording(block)
    try:
        results = []
        for case in cases:
            seen.clear()
            results.append(measure_case(function_name, fn, case, seen))
        return {"function": function_name, "cases": results}
    finally:
        for name, old in saved.items():
            if old is None:
                namespace.pop(name, None)
            else:
                namespace[name] = old


# ----------------------------------------------------------------------------- wire format


def encode(value):
    """Turn numpy arrays into JSON-safe records (base64 little-endian float32)."""
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value, dtype="<f4")
        return {"__array__": base64.b64encode(a.tobytes()).decode("ascii"), "shape": list(a.shape)}
    if isinstance(value, dict):
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    return value


def emit(measurement):
    """Hand a measurement to the grader as display data: the kernel's only channel back."""
    from IPython.display import display

    display({WIRE_MIMETYPE: encode(measurement)}, raw=True)
