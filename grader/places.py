"""Name a reference's layers by their place in a ResNet, for versions that prescribe no names.

Feedback names the layer where outputs first differ; with no prescribed names, Keras's counter
names (`conv2d_17`) would mean nothing to a student. So `make expected` names each layer of such
a version's reference by its place: "stage 3 block 2: main path Conv2D 1", "shortcut Conv2D",
"stage 1 BatchNormalization", "average pooling". Blocks are found from the data flow alone: each
Add closes a block, whose two inputs lead back to the block's input; a block with a convolution
on its shortcut starts a new stage. Pure, over plain layer records.
"""

import re

LABELS = {"conv2d": "Conv2D", "batchnorm": "BatchNormalization", "relu": "ReLU", "add": "Add",
          "zeropad": "ZeroPadding2D", "maxpool": "MaxPooling2D", "avgpool": "average pooling",
          "flatten": "Flatten", "dense": "output Dense"}

# "stage 3 block 2: main path Conv2D 1" -> ("3", "2", "main path", "Conv2D", "1"); a lone block has no stage.
PLACE = re.compile(r"^(?:stage (\d+) block (\d+): )?(main path|shortcut) (Conv2D|BatchNormalization)(?: (\d))?$")


def _chain(layers, start, stop):
    """The layers from `start` back along first parents, until one in `stop` (excluded) or the input."""
    out, i = [], start
    while i not in stop and layers[i]["parents"]:
        out.append(i)
        i = layers[i]["parents"][0]
    return out, i


def _ancestors(layers, i):
    seen, stack = set(), [i]
    while stack:
        j = stack.pop()
        for p in layers[j]["parents"]:
            if p not in seen:
                seen.add(p)
                stack.append(p)
    return seen


def place_names(layers):
    """{index: place name} for the layers of a reference table (records with kind and parents, parents first)."""
    adds = [layer["index"] for layer in layers if layer["kind"] == "add" and len(layer["parents"]) == 2]
    blocks = []
    for a in adds:
        first, second = layers[a]["parents"]
        common = _ancestors(layers, first) & (_ancestors(layers, second) | {second})
        if not common:
            continue
        block_input = max(common)  # the latest layer both paths descend from
        paths = [_chain(layers, p, {block_input})[0] for p in (first, second)]
        main, shortcut = sorted(paths, key=len, reverse=True)
        blocks.append((a, block_input, main[::-1], shortcut[::-1]))
    names = {}
    stage, number = 1, 0
    lone = len(blocks) == 1
    for a, block_input, main, shortcut in blocks:
        if any(layers[i]["kind"] == "conv2d" for i in shortcut) or stage == 1:
            stage, number = stage + 1, 0
        number += 1
        prefix = "" if lone else f"stage {stage} block {number}: "
        for path, label in ((main, "main path"), (shortcut, "shortcut")):
            counts = {}
            numbered = sum(layers[i]["kind"] == "conv2d" for i in path) > 1
            for i in path:
                kind = layers[i]["kind"]
                counts[kind] = counts.get(kind, 0) + 1
                suffix = f" {counts[kind]}" if numbered else ""
                names[i] = f"{prefix}{label} {LABELS.get(kind, kind)}{suffix}"
        names[a] = f"{prefix}Add"
        for layer in layers:  # the block's output ReLU
            if layer["parents"] == [a] and layer["kind"] == "relu":
                names[layer["index"]] = f"{prefix}output ReLU"
    first_input = min((b for _, b, _, _ in blocks), default=len(layers))
    last_add = max((a for a, _, _, _ in blocks), default=-1)
    for layer in layers:
        i = layer["index"]
        if i in names or layer["kind"] == "input":
            continue
        if i <= first_input and blocks and not lone:
            names[i] = f"stage 1 {LABELS.get(layer['kind'], layer['kind'])}"
        elif i > last_add and not lone:
            names[i] = LABELS.get(layer["kind"], layer["kind"])
    return names


def parse(name):
    """(block key, path, kind, number) of a place name; None for another name."""
    m = PLACE.match(name)
    if not m:
        return None
    stage, block, path, kind, number = m.groups()
    return (f"{stage}.{block}" if stage else ""), path, kind, number or ""
