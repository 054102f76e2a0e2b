"""Name the common mistakes, each with a hint that teaches without handing over the answer.

Pure functions over validated measurements. The checks say *where* a network differs
from the reference; the recognisers here say *why it probably does*: each looks at the
reference's and the submission's layer tables (the hard-coded-argument ones at all the
calls of a function together, since hard-coding shows only across calls) and returns a
Hint. Hints explain the idea and name the layer; they never quote the reference's code.
"""

import re
from collections import Counter
from dataclasses import dataclass

from grader import places, versions
from grader.agreement import arrays_agree, first_differing_layer, layer_outputs_agree
from grader.matching import fmt
from grader.measurement import MODES
from grader.results import Hint
from grader.versions import ASPECTS

_SHORTCUT_CONV = re.compile(r"^res(\d+[a-z]+)_branch1$")
_MAIN_CONV = re.compile(r"^res(\d+[a-z]+)_branch2([abc])$")


def main_conv(name):
    """(block, 'a', 'b' or 'c') of a main-path convolution of the reference, by its prescribed name
    (res2a_branch2b) or its place (grader.places: 'stage 2 block 1: main path Conv2D 2'); None for others."""
    m = _MAIN_CONV.match(name)
    if m:
        return m.group(1), m.group(2)
    p = places.parse(name)
    if p and p[1] == "main path" and p[2] == "Conv2D" and p[3] in ("1", "2", "3"):
        return p[0], "abc"[int(p[3]) - 1]
    return None


def shortcut_conv(name):
    """The block of the reference's shortcut convolution, by prescribed name or place; None for others."""
    m = _SHORTCUT_CONV.match(name)
    if m:
        return m.group(1)
    p = places.parse(name)
    return p[0] if p and p[1] == "shortcut" and p[2] == "Conv2D" else None


def block_label(block, layer_name):
    """How a hint names a block: 'res2a' by prescribed names, else 'stage 2 block 1' or 'the block'."""
    if _MAIN_CONV.match(layer_name):
        return f"res{block}"
    return f"stage {block.replace('.', ' block ')}" if block else "the block"
_BLOCK = re.compile(r"^(?:res|bn)(\d+)([a-z]+)_branch")

# Which argument a layer setting follows, for the hard-coded-argument recognisers.
ARGUMENT_OF = {("conv2d", "kernel_size"): "f", ("conv2d", "strides"): "s", ("dense", "units"): "classes"}

LETTER_L = ("the shortcut's suffix is the digit one, '1', not the letter 'l': "
            "the assignment text's 'l' is a typo")


@dataclass(frozen=True)
class Case:
    """One graded call as the recognisers see it: reference, submission, their layer pairing, its arguments."""

    id: str
    ref: object  # CaseMeasurement
    sub: object  # CaseMeasurement
    pairs: dict
    kwargs: dict

    def partner(self, ref_layer):
        i = self.pairs.get(ref_layer.index)
        return self.sub.layers[i] if i is not None else None

    @property
    def built(self):
        """The submission built its whole model (so its last layer is its output)."""
        return not self.sub.error and len(self.sub.layers) > 1


def letter_l_note(expected, found):
    """The 'l' for '1' typo in a layer name, as a note for the names message ('' when not that)."""
    if expected.endswith("1") and found == expected[:-1] + "l":
        return f" ({LETTER_L})"
    return ""


def _children(layers):
    out = {layer.index: [] for layer in layers}
    for layer in layers:
        for p in layer.parents:
            out[p].append(layer.index)
    return out


def _hint(id, text, aspects=ASPECTS):
    return Hint(id, text, tuple(aspects))


# ----------------------------------------------------------------------------- one call at a time


def missing_shortcut(case):
    if not case.built or not any(r.kind == "add" for r in case.ref.layers):
        return None
    if any(s.kind == "add" for s in case.sub.layers):
        return None
    return _hint("missing_shortcut", "Nothing adds the shortcut back to the main path: a residual block's output is "
                 "the sum of its main path and its shortcut, and only then the ReLU.")


def relu_before_add(case):
    """A ReLU between the main path's last BatchNormalization and the Add."""
    sub_children = _children(case.sub.layers)
    for r in case.ref.layers:
        if r.kind != "add":
            continue
        for p in r.parents:
            bn = case.partner(case.ref.layers[p])
            if case.ref.layers[p].kind != "batchnorm" or bn is None:
                continue
            for c in sub_children[bn.index]:
                if case.sub.layers[c].kind == "relu" and any(case.sub.layers[g].kind == "add" for g in sub_children[c]):
                    return _hint("relu_before_add", f"A ReLU sits between {bn.name} and the Add. The main path's last "
                                 "BatchNormalization goes into the Add as it is: the ReLU comes after the two paths "
                                 "are added, not before.", ("activations",))
    return None


def missing_final_relu(case):
    if not case.built:
        return None
    last = case.ref.layers[-1]
    if last.kind != "relu" or not last.parents or case.ref.layers[last.parents[0]].kind != "add":
        return None
    if case.sub.layers[-1].kind != "add":
        return None
    return _hint("missing_final_relu", "The block ends with the Add: its output should pass through a ReLU after "
                 "the Add, so the block's output is activated like every other layer's.", ("activations",))


def shortcut_stride(case):
    """The shortcut convolution strides differently from the main path's first convolution."""
    main = {}
    for r in case.ref.layers:
        m = main_conv(r.name)
        if m and m[1] == "a":
            main[m[0]] = r
    for r in case.ref.layers:
        block = shortcut_conv(r.name)
        first = main.get(block) if block is not None else None
        s, s_first = case.partner(r), case.partner(first) if first else None
        if s is None or s_first is None:
            continue
        if s.config.get("strides") != r.config.get("strides") and s_first.config.get("strides") == first.config.get("strides"):
            return _hint("shortcut_stride", f"{r.name}: the shortcut's convolution uses stride {fmt(s.config.get('strides'))} "
                         f"while the main path's first convolution uses {fmt(s_first.config.get('strides'))}, so the two "
                         "paths reach the Add with different heights and widths. Both follow the block's argument s.",
                         ("shapes", "activations"))
    return None


def changes_outputs(case, r, s):
    """Whether paired layers r and s compute differently: another output shape, other parameter
    counts, or other outputs. A setting that changes none of these is no mistake (padding 'same'
    on a 1x1 convolution); where activations were not measured, assume it matters."""
    if r.output_shape != s.output_shape or (r.trainable_params, r.non_trainable_params) != (
            s.trainable_params, s.non_trainable_params):
        return True
    return layer_outputs_agree(case.ref, case.sub, r, s) is not True


def stride_on_middle_conv(case):
    """The block's stride s on the f x f convolution instead of the first 1x1 ('ResNet v1.5')."""
    convs = {}
    for r in case.ref.layers:
        m = main_conv(r.name)
        if m:
            convs.setdefault(m[0], {})[m[1]] = r
    for block, parts in convs.items():
        first, middle = parts.get("a"), parts.get("b")
        if first is None or middle is None or first.config.get("strides") == middle.config.get("strides"):
            continue
        s_first, s_middle = case.partner(first), case.partner(middle)
        if s_first is None or s_middle is None:
            continue
        if (s_first.config.get("strides") == middle.config.get("strides")
                and s_middle.config.get("strides") == first.config.get("strides")):
            return _hint("stride_on_middle_conv", f"{middle.name}: the stride s is on the f x f convolution, "
                         f"and {first.name} strides by {fmt(s_first.config.get('strides'))}. The assignment "
                         "puts s on the main path's first 1x1 convolution, as the original ResNet does (moving it to "
                         "the f x f convolution is the later 'ResNet v1.5' variant, as in torchvision).",
                         ("shapes", "activations"))
    return None


def _first_setting_difference(case, kind, key):
    """The first reference layer of `kind` whose partner has another value of setting `key` that
    changes what it computes, with that value; (None, None) when there is none."""
    for r in case.ref.layers:
        s = case.partner(r)
        if (r.kind == kind and s is not None and s.kind == kind and s.config.get(key) != r.config.get(key)
                and changes_outputs(case, r, s)):
            return r, s.config.get(key)
    return None, None


def bn_axis(case):
    r, found = _first_setting_difference(case, "batchnorm", "axis")
    if r is None:
        return None
    return _hint("bn_axis", f"{r.name} normalises over axis {fmt(found)}. In a tensor of shape "
                 "(batch, height, width, channels), BatchNormalization should normalise each channel: "
                 "its axis is the channels axis.", ("params", "activations"))


def padding(case):
    r, found = _first_setting_difference(case, "conv2d", "padding")
    if r is None:
        return None
    return _hint("padding", f"{r.name} uses padding '{found}'. With an f x f kernel, 'valid' "
                 "padding shrinks the height and width by f - 1 and 'same' keeps them: check which one the "
                 "assignment asks of this convolution.", ("shapes", "activations"))


def filters_order(case):
    """The main path's filter counts, all present, in another order."""
    blocks = {}
    for r in case.ref.layers:
        m = main_conv(r.name)
        if m:
            blocks.setdefault(m[0], []).append(r)
    for name, convs in blocks.items():
        partners = [case.partner(r) for r in convs]
        if len(convs) < 3 or any(s is None for s in partners):
            continue
        want = [r.config.get("filters") for r in convs]
        got = [s.config.get("filters") for s in partners]
        if got != want and Counter(got) == Counter(want):
            return _hint("filters_order", f"{block_label(name, convs[0].name)}: the main path's convolutions have the right filter counts in "
                         f"the wrong order ({', '.join(map(str, got))}). filters lists F1, F2, F3 in the order of the "
                         "three convolutions of the main path.", ("shapes", "params", "activations"))
    return None


def missing_block(case):
    """A stage with a block too few (ResNet50: the reference has many blocks)."""
    ref_blocks = {m.groups() for m in map(_BLOCK.match, (r.name for r in case.ref.layers)) if m}
    if len(ref_blocks) < 2:
        return None
    sub_blocks = {m.groups() for m in map(_BLOCK.match, (s.name for s in case.sub.layers)) if m}
    sub_adds = sum(s.kind == "add" for s in case.sub.layers)
    if sub_adds >= sum(r.kind == "add" for r in case.ref.layers):
        return None
    stages = {stage for stage, _ in sub_blocks}
    for stage, block in sorted(ref_blocks - sub_blocks):
        if stage in stages:
            return _hint("missing_block", f"Stage {stage} has no block '{block}' (no layer is named "
                         f"res{stage}{block}_...): count the blocks each stage should have.")
    return None


_KERAS_NAME = re.compile(r"^(conv2d|batch_normalization|dense|average_pooling2d)(_\d+)?$")


def unnamed_pool(case):
    """The final pooling without the prescribed name: Keras calls it average_pooling2d."""
    for r in case.ref.layers:
        s = case.partner(r)
        if r.kind == "avgpool" and s is not None and s.name != r.name and _KERAS_NAME.match(s.name):
            return _hint("unnamed_pool", f"{r.name}: the final pooling layer has no name of yours (Keras called it "
                         f"'{s.name}'). The assignment prescribes a name for it too: only the names points are "
                         "lost, but give it its name.", ("names",))
    return None


def _blocks_found(case):
    """{(stage, reference block letter): the block letter of the submission's layers in its place}, from
    the first named layer of each reference block whose partner's name has the same stage."""
    found = {}
    for r in case.ref.layers:
        m = _BLOCK.match(r.name)
        s = case.partner(r)
        got = _BLOCK.match(s.name) if s is not None else None
        if m and got and got.group(1) == m.group(1):
            found.setdefault(m.groups(), got.group(2))
    return found


def block_letters(case):
    """Each block of a stage is there, in its place, but lettered otherwise (shifted, or a letter skipped)."""
    ref_blocks = sorted({m.groups() for m in map(_BLOCK.match, (r.name for r in case.ref.layers)) if m})
    found = _blocks_found(case)
    for stage in sorted({st for st, _ in ref_blocks}, key=int):
        want = [b for st, b in ref_blocks if st == stage]
        got = [found.get((stage, b)) for b in want]
        if None in got or got == want or len(set(got)) != len(got):
            continue
        if sum(r.kind == "add" for r in case.sub.layers) < sum(r.kind == "add" for r in case.ref.layers):
            return None  # a block is missing: missing_block says it
        wrong = [(w, g) for w, g in zip(want, got) if w != g]
        return _hint("block_letters", f"Stage {stage}: the blocks are lettered {', '.join(g for _, g in wrong)} "
                     f"where {', '.join(w for w, _ in wrong)} belong. Within each stage the blocks are lettered "
                     "a, b, c, ... in order, with no letter skipped: the convolutional block is 'a', the identity "
                     "blocks after it 'b', 'c', ....", ("names",))
    return None


def stage_in_block(case):
    """block='2a' where 'a' was meant: the stage appears twice in the names (res22a_branch2a)."""
    for r in case.ref.layers:
        m = _BLOCK.match(r.name)
        s = case.partner(r)
        if not m or s is None:
            continue
        stage, block = m.groups()
        doubled = r.name.replace(f"{stage}{block}_", f"{stage}{stage}{block}_", 1)
        if s.name == doubled:
            return _hint("stage_in_block", f"{r.name} is named '{s.name}': the stage is written twice. The block "
                         f"argument is the letter alone ('{block}'): the name is built from the stage and the "
                         f"letter, so passing '{stage}{block}' as the block repeats the stage.", ("names",))
    return None


def _first_differing(case, mode):
    """The first paired reference layer whose outputs differ in `mode` (None when all agree), and whether
    the output agrees."""
    want, got = case.ref.activations.get(mode), case.sub.activations.get(mode)
    if want is None or got is None:
        return None, True
    r = first_differing_layer(case.ref, case.pairs, want, got)
    if r is not None:
        return r, False
    return None, want.output.shape == got.output.shape and arrays_agree(want.output, got.output)


DEFAULT_BN_MODE = ("{layer} computes in {mode} mode what the reference computes in the other mode: a "
                   "BatchNormalization normalises with the batch's statistics in training mode and with its moving "
                   "averages in inference mode; let it follow the mode the model runs in.")


def bn_mode(case, modes, text=None):
    """One mode agrees throughout and the other first differs at a BatchNormalization given the same
    inputs: it ignores the mode it should run in (the block's `training` argument, say)."""
    if not case.built or not case.ref.activations:
        return None
    firsts = {mode: _first_differing(case, mode) for mode in MODES}
    good = [m for m, (layer, ok) in firsts.items() if layer is None and ok]
    bad = [m for m, (layer, _) in firsts.items() if layer is not None and layer.kind == "batchnorm"]
    if len(good) != 1 or len(bad) != 1:
        return None
    layer = firsts[bad[0]][0]
    if any(case.partner(case.ref.layers[p]) is None for p in layer.parents):
        return None
    call = (modes.get(bad[0]) or {}).get("call") or {}
    called = ", ".join(f"{k}={v!r}" for k, v in call.items())
    return _hint("bn_mode", (text or DEFAULT_BN_MODE).format(layer=layer.name, mode=bad[0], called=called),
                 ("activations",))


PER_CASE = (missing_shortcut, relu_before_add, missing_final_relu, shortcut_stride, stride_on_middle_conv, bn_axis,
            padding, filters_order, missing_block, unnamed_pool, block_letters, stage_in_block)


# ----------------------------------------------------------------------------- across calls


def _settings_across(cases, kind, key):
    """For each reference layer index of `kind`: [(case, ref value, submitted value)] over all calls."""
    out = {}
    for layer in cases[0].ref.layers:
        if layer.kind != kind or key not in layer.config:
            continue
        rows = []
        for c in cases:
            if layer.index >= len(c.ref.layers) or c.ref.layers[layer.index].kind != kind:
                break
            r = c.ref.layers[layer.index]
            s = c.partner(r)
            if s is None or s.kind != kind:
                break
            rows.append((c, r, r.config.get(key), s.config.get(key)))
        else:
            out[layer.index] = rows
    return out


def hard_coded(cases):
    """Settings that stay the same whatever the argument they should follow, and arguments whose default is wrong."""
    hints = []
    if len(cases) < 2:
        return hints
    for (kind, key), arg in ARGUMENT_OF.items():
        if not any(arg in c.kwargs for c in cases):
            continue  # not an argument of this function (or never varied by the grader)
        fixed, wrong_default = [], []
        for rows in _settings_across(cases, kind, key).values():
            refs, subs = [row[2] for row in rows], [row[3] for row in rows]
            wrong = [row for row in rows if row[2] != row[3]]
            if not wrong:
                continue
            if all(arg not in row[0].kwargs for row in wrong):
                wrong_default.append(wrong[0])  # right whenever the argument is given
            elif len(set(refs)) > 1 and len(set(subs)) == 1:
                fixed.append(wrong[0])
        if arg == "s":
            shortcut = {row[1].name for row in fixed if shortcut_conv(row[1].name) is not None}
            if len(shortcut) == len(fixed):
                fixed = []  # only the shortcut ignores s: shortcut_stride says it better
        if fixed:
            c, _, want, got = fixed[0]
            names = " and ".join(row[1].name for row in fixed[:3])
            what = {"f": "kernel size", "s": "stride", "classes": "number of units"}[arg]
            hints.append(_hint(f"hard_coded_{arg}", f"{names}: the {what} stays {fmt(got)} whatever {arg} is "
                               f"(with {c.id}, {fmt(want)} was expected). Use the argument {arg}: "
                               f"the grader calls the function with other values of {arg} than the notebook does."))
        if wrong_default:
            c, r, _, _ = wrong_default[0]
            hints.append(_hint(f"default_{arg}", f"{r.name} is right when {arg} is given and wrong when it is left out "
                               f"({c.id}): check the default value of {arg} in the signature."))
    return hints


def hard_coded_names(cases):
    """Layer names that do not follow stage and block, or that Keras gave because the student gave none."""
    if len(cases) < 2:
        return []
    for layer in cases[0].ref.layers:
        if not _BLOCK.match(layer.name):
            continue
        rows = []
        for c in cases:
            r = c.ref.layers[layer.index] if layer.index < len(c.ref.layers) else None
            s = c.partner(r) if r is not None else None
            if s is None:
                break
            rows.append((r.name, s.name))
        else:
            if all(_KERAS_NAME.match(s) for _, s in rows):
                return [_hint("unnamed_layers", f"{rows[0][0]}: this layer has no name of yours (Keras called it "
                              f"'{rows[0][1]}'). Give each layer the name the assignment prescribes, built from the "
                              "stage and block arguments.", ("names",))]
            if len({r for r, _ in rows}) > 1 and len({s for _, s in rows}) == 1:
                return [_hint("hard_coded_names", f"The layer names stay the same ('{rows[0][1]}', ...) whatever "
                              "stage and block are: build them from the stage and block arguments.", ("names",))]
    return []


# ----------------------------------------------------------------------------- Keras 2 habits

# Keras 1 and 2 keyword arguments Keras 3 no longer takes, and what it calls them now.
RENAMED_KEYWORDS = {
    "border_mode": "padding", "subsample": "strides", "init": "kernel_initializer", "nb_filter": "filters",
    "nb_row": "kernel_size", "nb_col": "kernel_size", "output_dim": "units", "dim_ordering": "data_format",
    "W_regularizer": "kernel_regularizer", "b_regularizer": "bias_regularizer", "input": "inputs",
    "output": "outputs",
}
_OLD_MODULE = re.compile(r"No module named '(keras\.(?:layers\.\w+|engine[\w.]*|utils\.\w+_utils|legacy[\w.]*))'")
_NO_POOL_SIZE = re.compile(r"(\w*Pooling2D)\.__init__\(\) missing 1 required positional argument: 'pool_size'")
_UNKNOWN_KEYWORD = re.compile(r"Unrecognized keyword arguments passed to (\w+): \{'(\w+)'")
_MISSING_ARG = re.compile(r"(Conv2D|Dense)\.__init__\(\) missing 1 required positional argument: '(filters|units)'")
_MERGE = re.compile(r"name 'merge' is not defined|cannot import name 'merge'|has no attribute 'merge'")
_OUTPUT_SHAPE = re.compile(r"'(\w+)' object has no attribute 'output_shape'")
_LEARNING_PHASE = re.compile(r"has no attribute 'set_learning_phase'")


def _keras2_hint(error):
    """(id, text) for the Keras 2 spelling behind one error message, saying what Keras 3 wants; None when none."""
    m = _NO_POOL_SIZE.search(error)
    if m:
        return "keras2_pool_size", (f"{m.group(1)} has no default pool_size in Keras 3 (Keras 2 used (2, 2) when "
                                    "it was left out): give the pool size the assignment asks for.")
    m = _UNKNOWN_KEYWORD.search(error)
    if m and m.group(2) in RENAMED_KEYWORDS:
        return "keras2_keyword", (f"{m.group(1)} does not take '{m.group(2)}' in Keras 3: that is a Keras 1/2 "
                                  f"name, now called '{RENAMED_KEYWORDS[m.group(2)]}'.")
    if m and m.group(2) == "mode":
        return "keras2_keyword", (f"{m.group(1)} takes no 'mode' in Keras 3: that argument is from Keras 1. "
                                  "Leave it out (and add tensors with an Add layer).")
    m = _MISSING_ARG.search(error)
    if m:
        old = {"filters": "nb_filter", "units": "output_dim"}[m.group(2)]
        return "keras2_argument", (f"{m.group(1)} needs {m.group(2)}, its first argument, in Keras 3 "
                                   f"(Keras 1 called it '{old}').")
    if _MERGE.search(error):
        return "keras2_merge", ("Keras 3 has no merge function (a Keras 1 API): the shortcut is added to the main "
                                "path with an Add layer, called on the list of the two tensors.")
    m = _OLD_MODULE.search(error)
    if m:
        return "keras2_module", (f"Keras 3 has no module {m.group(1)}: that is a Keras 2 path, so the import "
                                 "failed and the names it should have defined are missing. Import layers from "
                                 "keras.layers and models from keras.models.")
    if _OUTPUT_SHAPE.search(error):
        return "keras2_output_shape", ("Keras 3 layers and tensors have no output_shape (a Keras 2 attribute): "
                                       "read a tensor's .shape instead.")
    if _LEARNING_PHASE.search(error):
        return "keras2_learning_phase", ("Keras 3 has no set_learning_phase (a Keras 2 function): the training "
                                         "flag is given when a model is called.")
    return None


def keras2_hints(errors):
    """Hints for the Keras 1/2 spellings behind build or import errors, one per kind."""
    found = {}
    for error in errors:
        hint = _keras2_hint(error)
        if hint and hint[0] not in found:
            found[hint[0]] = _hint(*hint)
    return tuple(found.values())


def diagnose(function, cases, errors=(), version=None):
    """Every hint that applies to one function, over all its graded calls, first found first, no repeats.

    `cases` are (case id, reference, submission, layer pairs) for the calls that built something;
    `errors` the messages of the calls that failed, and of the student's definitions that failed
    where a call failed for a missing name (a Keras 2 import). `version` (grader.versions.Version)
    gives the calls' arguments, the aspects it grades (a hint about others is dropped) and its own
    wording of some hints.
    """
    version = version or versions.get()
    kwargs = {c["id"]: c.get("kwargs", {}) for c in version.cases.get(function, ())}
    views = [Case(cid, ref, sub, pairs, kwargs.get(cid, {})) for cid, ref, sub, pairs in cases]
    found = []
    for view in views:
        found += [h for h in (recognise(view) for recognise in PER_CASE) if h is not None]
        found += [h for h in [bn_mode(view, version.modes_of(function), version.hints.get("bn_mode"))] if h]
    if any(h.id == "relu_before_add" for h in found):  # the ReLU is there, just before the Add
        found = [h for h in found if h.id != "missing_final_relu"]
    across = hard_coded(views) + hard_coded_names(views)
    if any(h.id == "stride_on_middle_conv" for h in found):  # s is used, on the other convolution
        across = [h for h in across if h.id != "hard_coded_s"]
    found += across + list(keras2_hints(errors))
    graded = set(version.aspects(function)) if function in version.points else set(ASPECTS)
    seen, out = set(), []
    for h in found:
        aspects = tuple(a for a in h.aspects if a in graded)
        if h.id not in seen and aspects:
            seen.add(h.id)
            out.append(Hint(h.id, h.text, aspects))
    return tuple(out)
