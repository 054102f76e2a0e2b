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


# Layer class -> kind; the first class of each kind is its label in feedback (grader.matching.kind_label).
KINDS = {
    "Conv2D": "conv2d",
    "BatchNormalization": "batchnorm",
    "ReLU": "relu",
    "Relu": "relu",
    "Add": "add",
    "ZeroPadding2D": "zeropad",
    "MaxPooling2D": "maxpool",
    "AveragePooling2D": "avgpool",
    "Flatten": "flatten",
    "Dense": "dense",
    "InputLayer": "input",
}


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
    return KINDS.get(cls, cls.lower())


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


# ----------------------------------------------------------------------------- pairing with the reference

MAX_SKIPPED = 2  # extra layers a submission may insert between a layer and the inputs it should read
SIGNATURE_DEPTH = 3


def _children_of(layers):
    out = [[] for _ in layers]
    for layer in layers:
        for p in layer["parents"]:
            out[p].append(layer["index"])
    return out


def _signatures(layers):
    """For each layer, the kinds of the layers 1, 2, ... SIGNATURE_DEPTH steps downstream of it.

    Two layers of the same kind that read the same input (the main path's first
    convolution and the shortcut's) are told apart by what they feed.
    """
    children = _children_of(layers)
    out = []
    for layer in layers:
        levels, frontier = [], [layer["index"]]
        for _ in range(SIGNATURE_DEPTH):
            frontier = sorted({c for i in frontier for c in children[i]})
            levels.append(tuple(sorted(layers[i]["kind"] for i in frontier)))
        out.append(levels)
    return out


def _agreement(a, b):
    """How many levels of two signatures agree, from the top."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _config_overlap(a, b):
    return sum(1 for k, v in a["config"].items() if b["config"].get(k) == v) + (a["output_shape"] == b["output_shape"])


def pair_layers(reference, submission):
    """{reference index: submission index}: each reference layer paired with the submission's layer
    that plays its part in the data flow.

    Layers pair by kind and by what they read: a layer pairs with a reference layer of its
    kind whose inputs are the partners of its own inputs. Extra layers a submission inserts
    (at most MAX_SKIPPED on a path) and reference layers it left out are looked through.
    Ties are broken by what each layer feeds, then by name, then by settings, then by the
    order of building. So a misnamed layer still finds its partner, and names are judged
    on the pairs. Both tables list parents before children. Pure, standard library only:
    the probe runs it in the kernel to seed weights, the grader again to judge.
    """
    pairs, used = {}, set()
    ref_inputs = [r for r in reference if r["kind"] == "input"]
    sub_inputs = [s for s in submission if s["kind"] == "input"]
    for r, s in zip(ref_inputs, sub_inputs):
        pairs[r["index"]] = s["index"]
        used.add(s["index"])
    ref_sig, sub_sig = _signatures(reference), _signatures(submission)
    anchors = {}  # reference index -> the submission layers its output is derived from, looking through the unpaired

    def ref_anchors(i):
        if i in pairs:
            return frozenset([pairs[i]])
        if i not in anchors:
            anchors[i] = frozenset().union(*(ref_anchors(p) for p in reference[i]["parents"])) \
                if reference[i]["parents"] else frozenset()
        return anchors[i]

    def sub_anchors(j, budget):
        """The paired layers that layer j reads from, looking through at most `budget` unpaired ones; and how many."""
        found, skipped = set(), 0
        for p in submission[j]["parents"]:
            if p in used:
                found.add(p)
            elif budget > 0:
                more, n = sub_anchors(p, budget - 1)
                if more is None:
                    return None, 0
                found |= more
                skipped = max(skipped, n + 1)
            else:
                return None, 0
        return found, skipped

    for r in reference:
        i = r["index"]
        if i in pairs or r["kind"] == "input" or not r["parents"]:
            continue
        want = frozenset().union(*(ref_anchors(p) for p in r["parents"]))
        best, best_score = None, None
        for s in submission:
            j = s["index"]
            if j in used or s["kind"] != r["kind"] or not s["parents"]:
                continue
            got, skipped = sub_anchors(j, MAX_SKIPPED)
            if got is None or frozenset(got) != want:
                continue
            score = (-skipped, _agreement(ref_sig[i], sub_sig[j]), s["name"] == r["name"], _config_overlap(r, s), -j)
            if best_score is None or score > best_score:
                best, best_score = j, score
        if best is not None:
            pairs[i] = best
            used.add(best)
    _pair_substitutes(reference, submission, pairs, used)
    return pairs


def _pair_substitutes(reference, submission, pairs, used):
    """Pair a layer of another kind that stands exactly in a reference layer's place (a MaxPooling2D
    where an AveragePooling2D belongs): it reads the partners of its inputs, has its output shape, and
    feeds the partner of one of its children. Then the mistake is named on that layer."""
    ref_children, sub_children = _children_of(reference), _children_of(submission)
    for r in reference:
        i = r["index"]
        if i in pairs or r["kind"] == "input" or not all(p in pairs for p in r["parents"]):
            continue
        want = sorted(pairs[p] for p in r["parents"])
        for s in submission:
            j = s["index"]
            if j in used or sorted(s["parents"]) != want or s["output_shape"] != r["output_shape"]:
                continue
            feeds = not ref_children[i] or any(pairs.get(c) in sub_children[j] for c in ref_children[i])
            if feeds:
                pairs[i] = j
                used.add(j)
                break


# ----------------------------------------------------------------------------- seeded weights


def _rng(*parts):
    digest = hashlib.sha256("/".join(str(p) for p in (WEIGHT_SEED, *parts)).encode()).digest()
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


class SeededWeights:
    """Seeded weight values, each drawn once: the two ResNet50 cases share all but the last layer's.

    A value is keyed by everything that decides it (seed, variable name, shape, dtype), so a
    cached value is the value a fresh draw would give. `draw_ahead` draws the values the
    reference's layers will want in a background thread (numpy draws without holding the GIL),
    while the student's model is being built on the main thread.
    """

    def __init__(self):
        self._values = {}
        self._thread = None

    @staticmethod
    def draw(seed, name, shape, dtype):
        return _seeded_value(name, shape, _rng(*seed, name)).astype(np.dtype(dtype))

    def wait(self):
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def get(self, seed, name, shape, dtype):
        self.wait()
        key = (tuple(seed), name, tuple(int(d) for d in shape), str(np.dtype(dtype)))
        if key not in self._values:
            self._values[key] = self.draw(*key)
        return self._values[key]

    def draw_ahead(self, wanted):
        """Draw (seed, name, shape, dtype) values in a background thread; `get` waits for it."""
        import threading

        def run():
            for key in wanted:
                if key not in self._values:
                    self._values[key] = self.draw(*key)

        self._thread = threading.Thread(target=run, name="seeded-weights", daemon=True)
        self._thread.start()


def reference_weights(reference, dtype):
    """The (seed, name, shape, dtype) of every weight the reference's layers have, from their table.

    Shapes follow from each layer's settings and its input's channels (channels last), so that
    the values can be drawn before the submission's model exists. Only a prediction: a value is
    used only where the submission's weight has exactly that seed, name, shape and dtype.
    """
    dtype = str(np.dtype(dtype))
    out = []
    for r in reference:
        seed, parents = ("reference", r["index"]), r.get("parents") or []
        cfg = r.get("config") or {}
        try:
            channels = int(reference[parents[0]]["output_shape"][-1]) if parents else None
            if r["kind"] == "conv2d" and channels:
                shapes = {"kernel": (*cfg["kernel_size"], channels, cfg["filters"])}
                if cfg.get("use_bias", True):
                    shapes["bias"] = (cfg["filters"],)
            elif r["kind"] == "dense" and channels:
                shapes = {"kernel": (channels, cfg["units"]), "bias": (cfg["units"],)}
            elif r["kind"] == "batchnorm":
                width = (int(r["output_shape"][cfg["axis"][0]]),)
                shapes = dict.fromkeys(("gamma", "beta", "moving_mean", "moving_variance"), width)
            else:
                continue
        except (KeyError, IndexError, TypeError, ValueError):
            continue
        out += [(seed, name, tuple(int(d) for d in shape), dtype) for name, shape in shapes.items()]
    return out


def set_seeded_weights(nodes, records, pairs, drawn=None):
    """Set every weight from a fixed seed, so the student's initializers play no part.

    A layer paired with a reference layer gets that reference layer's weights: the
    seed is the reference layer's index, never the layer's own settings, so a setting
    that changes nothing (padding on a 1x1 convolution) changes no weight here or
    downstream. A layer with no partner is seeded from what it computes (its key).
    `drawn` (a SeededWeights) keeps values already drawn.
    """
    drawn = drawn or SeededWeights()
    partner_of = {s: r for r, s in pairs.items()}
    done, occurrences = set(), {}
    for node, record in zip(nodes, records):
        op = node.operation
        if id(op) in done:
            continue
        done.add(id(op))
        if record["index"] in partner_of:
            seed = ("reference", partner_of[record["index"]])
        else:
            occurrence = occurrences.get(record["key"], 0)
            occurrences[record["key"]] = occurrence + 1
            seed = ("unpaired", record["key"], occurrence)
        for w_index, var in enumerate(getattr(op, "weights", [])):
            name = str(getattr(var, "name", "")).split("/")[-1].split(":")[0] or f"weight{w_index}"
            var.assign(drawn.get(seed, name, var.shape, getattr(var, "dtype", "float32")))


# ----------------------------------------------------------------------------- activations


def seeded_input(shape, dtype="float32"):
    """The fixed input every measurement uses: BATCH samples of the given shape (float32 values, in `dtype`)."""
    rng = np.random.default_rng(INPUT_SEED)
    return rng.uniform(-1.0, 1.0, (BATCH, *shape)).astype("float32").astype(dtype)


def fingerprint(array):
    """A compact summary of one activation: per-channel and per-position means (summed in float64)."""
    a = np.asarray(array, dtype="float64")
    if a.ndim < 2:
        return {"channel": a.reshape(-1).astype("float32"), "spatial": np.zeros(0, "float32")}
    channel = a.reshape(-1, a.shape[-1]).mean(axis=0)
    spatial = a.mean(axis=(0, a.ndim - 1)).reshape(-1) if a.ndim > 2 else np.zeros(0)
    return {"channel": channel.astype("float32"), "spatial": spatial.astype("float32")}


# How the two modes run unless a version says otherwise: one model, run with training=False, then True.
MODEL_MODES = {"inference": {"call": {}, "run": False}, "training": {"call": {}, "run": True}}


def activations(model, nodes, x, runs=(("inference", False), ("training", True))):
    """Outputs of every node, for each (mode, training flag the model runs with) in `runs`.

    A flag of None runs the model as a plain call of the function would (see `replay`). Arrays are
    rounded to float32 only here, at the end, so that a float64 reference comes out the same on every
    CPU (see grader/expected.py).
    """
    import keras

    probed = [i for i, n in enumerate(nodes) if type(n.operation).__name__ != "InputLayer"]
    tap = None  # a model of every node's output, built only for the runs that need one
    if any(training is not None for _, training in runs):
        tap = keras.Model(model.inputs, [nodes[i].outputs[0] for i in probed] + [model.outputs[0]])
    result = {}
    for mode, training in runs:
        if training is None:
            values = replay(nodes, x)
            outputs = [values[id(nodes[i].outputs[0])] for i in probed] + [values[id(model.outputs[0])]]
        else:
            outputs = list(tap([x], training=training))
        output = np.asarray(keras.ops.convert_to_numpy(outputs[-1]), dtype="float64").astype("float32")
        layers = {}
        for k, i in enumerate(probed):  # one layer's float64 copy at a time, each output let go once summarised
            layers[str(i)] = fingerprint(keras.ops.convert_to_numpy(outputs[k]))
            outputs[k] = None
        result[mode] = {"output": output, "layers": layers}
    return result


def replay(nodes, x):
    """{id of each node's output tensor: its value}, each layer called on its own, as the function called
    eagerly would call it: with the `training` it was given, else its default (inference).

    Run as one model, Keras 3 would override every layer's own `training` (run with True or False), or
    pass one layer's `training` on to every layer after it (run with neither), and so hide a
    BatchNormalization that ignores the block's argument."""
    import keras

    values = {}
    for node in nodes:
        if type(node.operation).__name__ == "InputLayer":
            values[id(node.outputs[0])] = keras.ops.convert_to_tensor(x)
            continue
        args, kwargs = node.arguments.fill_in(values)
        for tensor, value in zip(node.outputs, keras.tree.flatten(node.operation(*args, **kwargs))):
            values[id(tensor)] = value
    return values


def builds(modes):
    """The modes grouped by the extra arguments the function is called with: [(call kwargs, [(mode, run)])]."""
    out = []
    for mode, how in modes.items():
        call = dict(how.get("call") or {})
        for kwargs, runs in out:
            if kwargs == call:
                runs.append((mode, how.get("run")))
                break
        else:
            out.append((call, [(mode, how.get("run"))]))
    return out


def remap(fingerprints, pairs_from, pairs_to):
    """Another build's layer outputs, keyed by this build's indices through their common reference partners."""
    back = {s: r for r, s in pairs_from.items()}
    return {str(pairs_to[back[int(k)]]): fp for k, fp in fingerprints.items()
            if int(k) in back and back[int(k)] in pairs_to}


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


def _build(function_name, fn, case, call, inputs):
    """The function's model for one case, called with `call`'s extra arguments, and its input shape.

    A block's Input is put in `inputs` first, so that the layers built before a failure can be found."""
    import keras

    if function_name == "ResNet50":
        model = fn(**case["kwargs"], **call)
        if not isinstance(model, keras.Model):
            raise TypeError(f"{function_name} returned {type(model).__name__}, expected a keras.Model")
        return model, [int(d) for d in model.inputs[0].shape[1:]]
    X = keras.Input(tuple(case["input_shape"]))
    inputs.append(X)
    Y = fn(X, **case["kwargs"], **call)
    if not isinstance(Y, keras.KerasTensor):
        raise TypeError(f"{function_name} returned {type(Y).__name__}, expected the block's output tensor")
    return keras.Model(X, Y), list(case["input_shape"])


def measure_case(function_name, fn, case, seen=None, reference=None, dtype="float32", drawn=None, modes=None):
    """Build the function's model for one case, seed its weights, and measure it.

    `seen` collects tensors handed to the blocks while ResNet50 is built, so that
    if building fails, the layers built so far can still be reported. `reference`
    is the reference's layer table for this case: each layer paired with one of
    its layers gets that layer's weights. Without it (measuring the reference
    itself) every layer is its own partner. `drawn` keeps the seeded values drawn so far.
    `modes` says how each mode calls and runs the function (MODEL_MODES by default); a mode
    that calls it with other arguments (training=True) measures a build of its own, whose
    layers are reported under the first build's indices through their reference partners.
    """
    import keras

    call = _describe_call(function_name, case)
    out = {"case": case["id"], "call": call}
    first = None  # (records, pairs) of the first build
    for extra, runs in builds(modes or MODEL_MODES):
        keras.backend.clear_session()
        where = f"{call[:-1]}, {', '.join(f'{k}={v!r}' for k, v in extra.items())})" if extra else call
        inputs = []
        try:
            model, in_shape = _build(function_name, fn, case, extra, inputs)
        except (Exception, SystemExit) as exc:  # the student's code failed: that is data, not a crash
            out["error"] = _error(exc, where)
            if first is None:
                try:
                    X = inputs[0] if inputs else _input_of(seen[0]) if seen else None
                    if X is not None:
                        out["layers"] = layer_table(nodes_built_from(X))
                except Exception:
                    pass
            return out
        try:
            nodes = graph_nodes(model)
            records = layer_table(nodes)
            pairs = pair_layers(reference, records) if reference is not None else {r["index"]: r["index"] for r in records}
            set_seeded_weights(nodes, records, pairs, drawn)
            measured = activations(model, nodes, seeded_input(in_shape, dtype), runs)
        except Exception as exc:
            out["error"] = _error(exc, f"measuring {where}")
            return out
        if first is None:
            first = (records, pairs)
            out["layers"] = records
            out["output_shape"] = _shape(model.outputs[0])
            out["trainable_params"] = int(sum(int(np.prod(w.shape)) for w in model.trainable_weights))
            out["non_trainable_params"] = int(sum(int(np.prod(w.shape)) for w in model.non_trainable_weights))
            out["activations"] = measured
        else:
            for mode, result in measured.items():
                out["activations"][mode] = {"output": result["output"],
                                            "layers": remap(result["layers"], pairs, first[1])}
    return out


BLOCK_NAMES = ("identity_block", "convolutional_block")


class positional_training:
    """While measuring, let a layer take `training` positionally, as Keras 2 did: `BatchNormalization(axis=3)(X,
    training)` is how students of the 2021 notebook pass it on, and Keras 3 refuses a bool passed that way.

    Only a bool (or None) in second place, for a layer whose call() has `training` second, moves to
    the keyword; the patch is undone afterwards."""

    def __enter__(self):
        import inspect

        import keras

        self.layer = keras.layers.Layer
        original = self.original = self.layer.__call__

        def __call__(layer, *args, **kwargs):
            if len(args) >= 2 and (args[1] is None or isinstance(args[1], (bool, np.bool_))) and "training" not in kwargs:
                try:
                    params = list(inspect.signature(layer.call).parameters)
                except (TypeError, ValueError):
                    params = []
                if params[1:2] == ["training"]:
                    args, kwargs = args[:1] + args[2:], {**kwargs, "training": bool(args[1]) if args[1] is not None else None}
            return original(layer, *args, **kwargs)

        self.layer.__call__ = __call__
        return self

    def __exit__(self, *exc):
        self.layer.__call__ = self.original


class keras2_pool_size:
    """While measuring, give the pooling layers Keras 2's default pool_size, (2, 2): a notebook version
    taught on Keras 2 whose text asks for a (2, 2) window is answered by `AveragePooling2D()` there,
    and Keras 3 has no default. Only versions that say so (`keras2_defaults` in their version.json)."""

    def __enter__(self):
        import keras

        self.saved = {cls: cls.__init__ for cls in (keras.layers.AveragePooling2D, keras.layers.MaxPooling2D)}
        for cls, init in self.saved.items():
            def __init__(layer, pool_size=(2, 2), *args, _init=init, **kwargs):
                _init(layer, pool_size, *args, **kwargs)
            cls.__init__ = __init__
        return self

    def __exit__(self, *exc):
        for cls, init in self.saved.items():
            cls.__init__ = init


KERAS2_DEFAULTS = {"pool_size": keras2_pool_size}


def measure_function(function_name, fn, cases, blocks=None, reference=None, dtype="float32", modes=None,
                     keras2=()):
    """Measure every case of one graded function.

    `blocks` maps block names to correct implementations that replace the
    student's own while ResNet50 runs, so a block's mistake costs points once.
    `reference` maps case ids to the reference's layer tables (plain records),
    whose weights the paired layers get. `dtype` is the float type models are
    built in: float64 for the reference (see grader/expected.py), float32 for
    submissions. `modes` (see measure_case) and `keras2` (names in KERAS2_DEFAULTS: Keras 2 defaults
    the version's notebook was taught with) come from the notebook's version.
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
    import keras

    floatx = keras.config.floatx()
    keras.config.set_floatx(dtype)
    drawn = SeededWeights()
    if reference is not None:  # the reference's weights are drawn while the student's model is built
        wanted = [reference_weights(reference.get(case["id"], []), dtype) for case in cases]
        drawn.draw_ahead(list(dict.fromkeys(key for keys in wanted for key in keys)))
    try:
        results = []
        import contextlib

        with positional_training(), contextlib.ExitStack() as stack:
            for name in keras2 or ():
                stack.enter_context(KERAS2_DEFAULTS[name]())
            for case in cases:
                seen.clear()
                table = None if reference is None else reference.get(case["id"], [])
                results.append(measure_case(function_name, fn, case, seen, table, dtype, drawn, modes))
        return {"function": function_name, "cases": results}
    finally:
        drawn.wait()
        keras.config.set_floatx(floatx)
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
