"""Pair each reference layer with the submission's layer that plays its part.

Layers pair by their place in the data flow (kind, and the layers they read
from), names only breaking ties: see `probe.pair_layers`, the one algorithm
both the kernel (to give each layer its partner's weights) and the grader (to
judge) run. So a misnamed layer still finds its partner and costs only the
`names` aspect, and auto-generated names such as `activation_7` never matter.
"""

from grader.probe import KINDS, pair_layers

# The kinds of layer whose names the assignment prescribes.
NAMED_KINDS = frozenset({"conv2d", "batchnorm", "dense", "avgpool"})
# Kind -> the Keras class a student would write: the probe's table read backwards, first class first.
LABELS = {kind: cls for cls, kind in reversed(KINDS.items())}


def kind_label(kind, default=None):
    """'Conv2D' for 'conv2d': how feedback names a kind of layer (`default`, else the kind, when unknown)."""
    return LABELS.get(kind, kind if default is None else default)


def fmt(value):
    """A setting as feedback shows it: tuples as Python writes them ('(2,)', '(1, 1)'), strings quoted."""
    if isinstance(value, (list, tuple)):
        return "(" + ", ".join(fmt(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return repr(value) if isinstance(value, str) else str(value)


def record(layer):
    """A validated Layer as the plain record the pairing (and the kernel) reads."""
    return {"index": layer.index, "name": layer.name, "kind": layer.kind, "config": layer.config,
            "output_shape": layer.output_shape, "parents": layer.parents}


def wire_record(layer):
    """The same record in JSON-friendly form, for sending the reference's table into a kernel."""
    def plain(v):
        return [plain(x) for x in v] if isinstance(v, tuple) else v
    return {k: plain(v) for k, v in record(layer).items()}


def reference_tables(expected):
    """{case id: the reference's layer table as plain records}: what the probe pairs a submission's layers with."""
    return {case.case: [wire_record(layer) for layer in case.layers] for case in expected.cases}


def match_layers(reference, submission):
    """Return {reference index: submission index} for every layer that could be paired."""
    return pair_layers([record(r) for r in reference], [record(s) for s in submission])


def describe(layer, layers, depth=0):
    """A name a student can find: the prescribed name or the place name the grader gave it
    (grader.places: one with spaces), else the layer's kind and what feeds it."""
    if layer.kind in NAMED_KINDS or layer.kind == "input" or " " in layer.name:
        return layer.name if layer.kind != "input" else "the input"
    label = kind_label(layer.kind, layer.class_name)
    if depth >= 1 or not layer.parents:
        return label
    feeds = " + ".join(describe(layers[p], layers, depth + 1) for p in layer.parents)
    return f"{label} of {feeds}" if layer.kind == "add" else f"{label} after {feeds}"
