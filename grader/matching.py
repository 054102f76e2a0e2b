"""Pair each reference layer with the submission's layer that plays its part.

Layers are matched by name first, then by structure: same kind, fed by the
layers that match the reference layer's inputs. So a misnamed layer still finds
its partner and costs only the `names` aspect, and auto-generated names such as
`activation_7` never matter.
"""

# The kinds of layer whose names the assignment prescribes.
NAMED_KINDS = frozenset({"conv2d", "batchnorm", "dense", "avgpool"})


def _config_overlap(a, b):
    return sum(1 for k, v in a.config.items() if b.config.get(k) == v) + (a.output_shape == b.output_shape)


def match_layers(reference, submission):
    """Return {reference index: submission index} for every layer that could be paired."""
    by_name = {}
    for layer in submission:
        by_name.setdefault(layer.name, layer)
    pairs, used = {}, set()
    for ref in reference:
        if ref.kind in NAMED_KINDS and ref.name in by_name and by_name[ref.name].index not in used:
            pairs[ref.index] = by_name[ref.name].index
            used.add(by_name[ref.name].index)
    ref_inputs = [r for r in reference if r.kind == "input"]
    sub_inputs = [s for s in submission if s.kind == "input" and s.index not in used]
    for ref, sub in zip(ref_inputs, sub_inputs):
        pairs[ref.index] = sub.index
        used.add(sub.index)

    for _ in range(2):  # a second pass picks up layers whose inputs matched late
        for ref in reference:
            if ref.index in pairs or not all(p in pairs for p in ref.parents):
                continue
            want = sorted(pairs[p] for p in ref.parents)
            candidates = [
                s for s in submission
                if s.index not in used and s.kind == ref.kind and sorted(s.parents) == want
            ]
            if candidates:
                best = max(candidates, key=lambda s: (_config_overlap(ref, s), -s.index))
                pairs[ref.index] = best.index
                used.add(best.index)

    keyed = {}
    for s in submission:
        if s.index not in used:
            keyed.setdefault((s.kind, s.key), s)
    for ref in reference:
        sub = keyed.get((ref.kind, ref.key))
        if ref.index not in pairs and sub is not None and sub.index not in used:
            pairs[ref.index] = sub.index
            used.add(sub.index)
    return pairs


def describe(layer, layers, depth=0):
    """A name a student can find: the prescribed name, or the layer's kind and what feeds it."""
    if layer.kind in NAMED_KINDS or layer.kind == "input":
        return layer.name if layer.kind != "input" else "the input"
    label = {"relu": "ReLU", "add": "Add", "zeropad": "ZeroPadding2D", "maxpool": "MaxPooling2D",
             "flatten": "Flatten"}.get(layer.kind, layer.class_name)
    if depth >= 1 or not layer.parents:
        return label
    feeds = " + ".join(describe(layers[p], layers, depth + 1) for p in layer.parents)
    return f"{label} of {feeds}" if layer.kind == "add" else f"{label} after {feeds}"
