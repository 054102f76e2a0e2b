"""The four aspects, judged in the trusted process from validated measurements.

Pure functions: (expected, submitted) measurements in, Check results out.
"""

import re

import numpy as np

from grader.agreement import arrays_agree, fingerprints_agree, layer_outputs_agree, tolerance
from grader.diagnosis import diagnose, letter_l_note
from grader.matching import NAMED_KINDS, describe, fmt, kind_label, match_layers
from grader.measurement import MODES
from grader.results import CaseOutcome, Check, LayerRow, LayerTable
from grader.spec import ASPECTS

MAX_MESSAGES = 6


def _shape_text(shape):
    return fmt(tuple(shape))


def config_differences(ref, sub):
    """'expected strides (1, 1), found (2, 2)' for each hyperparameter that differs."""
    out = []
    for key, want in ref.config.items():
        got = sub.config.get(key)
        if got != want:
            out.append(f"expected {key} {fmt(want)}, found {fmt(got)}")
    return out


def _capped(messages):
    messages = list(messages)
    if len(messages) > MAX_MESSAGES:
        extra = len(messages) - MAX_MESSAGES
        messages = messages[:MAX_MESSAGES] + [f"... and {extra} more"]
    return tuple(messages)


def _article(word):
    return "an" if word[:1].upper() in "AEIOU" else "a"


# ----------------------------------------------------------------------------- names


def check_names(ref, sub, pairs):
    msgs = []
    subs = sub.layers
    for r in ref.layers:
        if r.kind not in NAMED_KINDS:
            continue
        s = subs[pairs[r.index]] if r.index in pairs else None
        if s is None:
            label = kind_label(r.kind)
            why = " (the model failed before building it)" if sub.error else ""
            msgs.append(f"{r.name}: expected {_article(label)} {label} layer named '{r.name}', found none{why}")
        elif s.name != r.name:
            msgs.append(f"{r.name}: expected the {kind_label(r.kind)} layer here to be named '{r.name}', "
                        f"found '{s.name}'{letter_l_note(r.name, s.name)}")
        elif s.kind != r.kind:
            label = kind_label(r.kind)
            msgs.append(f"{r.name}: expected {_article(label)} {label} layer, found {s.class_name}")
    matched = set(pairs.values())
    for s in subs:
        if s.kind in NAMED_KINDS and s.index not in matched:
            msgs.append(f"{s.name}: unexpected {kind_label(s.kind)} layer (the reference has no such layer)")
    return msgs


# ----------------------------------------------------------------------------- shapes


def check_shapes(ref, sub, pairs):
    """Output shapes of matched layers, and of the named layers that are missing (a block that
    returns its input unchanged has the right output shape, but none of the layers). Only the first
    layer of each chain of differences is reported: the layers after it differ because of it."""
    msgs = []
    missing = [r.name for r in ref.layers if r.kind in NAMED_KINDS and r.index not in pairs]
    if missing and not sub.error:
        msgs.append(f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}: expected "
                    f"{len(missing)} more layer(s) with output shapes, found none")
    if sub.error:
        msgs.append(f"the model could not be built: {sub.error}")
    elif tuple(sub.output_shape) != tuple(ref.output_shape):
        msgs.append(f"output: expected shape {_shape_text(ref.output_shape)}, found {_shape_text(sub.output_shape)}")
    wrong, consequences = set(), 0
    for r in ref.layers:
        if r.kind == "input" or r.index not in pairs:
            continue
        s = sub.layers[pairs[r.index]]
        if s.output_shape == r.output_shape:
            continue
        wrong.add(r.index)
        if any(p in wrong for p in r.parents):
            consequences += 1
            continue
        detail = [f"expected output shape {_shape_text(r.output_shape)}, found {_shape_text(s.output_shape)}"]
        msgs.append(f"{describe(r, ref.layers)}: " + "; ".join(detail + config_differences(r, s)))
    if consequences:
        msgs.append(f"{consequences} later layer(s) have other shapes as a consequence")
    return msgs


# ----------------------------------------------------------------------------- params


def _count_text(trainable, frozen):
    return f"{trainable + frozen:,} parameters ({frozen:,} non-trainable)"


def check_params(ref, sub, pairs):
    msgs = []
    if not sub.error and (sub.trainable_params, sub.non_trainable_params) != (ref.trainable_params, ref.non_trainable_params):
        msgs.append(f"model: expected {_count_text(ref.trainable_params, ref.non_trainable_params)}, "
                    f"found {_count_text(sub.trainable_params, sub.non_trainable_params)}")
    for r in ref.layers:
        if r.params == 0 and r.index in pairs and sub.layers[pairs[r.index]].params == 0:
            continue
        if r.index not in pairs:
            if r.params:
                msgs.append(f"{describe(r, ref.layers)}: expected {_count_text(r.trainable_params, r.non_trainable_params)}, found no such layer")
            continue
        s = sub.layers[pairs[r.index]]
        if (s.trainable_params, s.non_trainable_params) != (r.trainable_params, r.non_trainable_params):
            detail = [f"expected {_count_text(r.trainable_params, r.non_trainable_params)}, "
                      f"found {_count_text(s.trainable_params, s.non_trainable_params)}"]
            msgs.append(f"{describe(r, ref.layers)}: " + "; ".join(detail + config_differences(r, s)))
    return msgs


# ----------------------------------------------------------------------------- activations


def _diverges(fp_ref, fp_sub):
    return not fingerprints_agree(fp_ref, fp_sub)


def _label(layer, layers):
    return describe(layer, layers) if layer.kind != "input" else "the input"


def locate_difference(ref, sub, pairs, want, got):
    """Where one mode's outputs first really differ: (reference layer, extra, absent), or None when every
    paired layer agrees.

    The reference layer is the first paired one (in the reference's order) whose outputs differ.
    When `extra` (submission layers it reads that the reference does not have) and `absent`
    (reference layers it should read that the submission does not have) are both empty, it reads
    the partners of its reference inputs, which agree: its own outputs differ, given the same
    inputs. Otherwise what feeds it is what differs.
    """
    partner_of = {s: r for r, s in pairs.items()}
    for r in ref.layers:
        if r.index not in pairs or r.index not in want.layers:
            continue
        fp = got.layers.get(pairs[r.index])
        if fp is not None and not _diverges(want.layers[r.index], fp):
            continue
        s = sub.layers[pairs[r.index]]
        extra = tuple(sub.layers[p] for p in s.parents if p not in partner_of)
        absent = tuple(ref.layers[p] for p in r.parents if p not in pairs)
        return r, extra, absent
    return None


def first_difference(ref, sub, pairs, want, got):
    """`locate_difference` as text for the student; '' when every paired layer agrees."""
    found = locate_difference(ref, sub, pairs, want, got)
    if found is None:
        return ""
    r, extra, absent = found
    if extra:
        what = ", ".join(describe(x, sub.layers) for x in extra)
        return f"first difference: {what}, which the reference does not have, feeds {_label(r, ref.layers)}"
    if absent:
        what = ", ".join(_label(x, ref.layers) for x in absent)
        return f"first difference: no layer found for {what}, which feeds {_label(r, ref.layers)}"
    return f"first layer that differs: {_label(r, ref.layers)}"


def check_activations(ref, sub, pairs):
    if sub.error:
        return [f"could not be run: {sub.error}"]
    msgs = []
    for mode in MODES:
        want, got = ref.activations[mode], sub.activations[mode]
        first = first_difference(ref, sub, pairs, want, got)
        output_ok = arrays_agree(want.output, got.output)
        if output_ok and not first:
            continue
        if want.output.shape != got.output.shape:
            head = f"{mode} mode: expected output of shape {_shape_text(want.output.shape)}, found {_shape_text(got.output.shape)}"
        elif not output_ok:
            diff = float(np.nanmax(np.abs(want.output - got.output))) if np.all(np.isfinite(got.output)) else float("nan")
            head = f"{mode} mode: output differs from the reference (largest difference {diff:.4g}, tolerance {tolerance(want.output):.2g})"
        else:
            head = f"{mode} mode: output matches, but an intermediate layer does not"
        if first:
            head += f"; {first}"
        else:
            missing = [describe(r, ref.layers) for r in ref.layers if r.index not in pairs and r.kind != "input"]
            extra_idx = set(range(len(sub.layers))) - set(pairs.values())
            extra = [describe(s, sub.layers) for s in sub.layers if s.index in extra_idx and s.kind != "input"]
            if missing:
                head += "; no layer found for: " + ", ".join(missing[:3])
            if extra:
                head += "; layers the reference does not have: " + ", ".join(extra[:3])
        msgs.append(head)
    return msgs


ASPECT_CHECKS = {"names": check_names, "shapes": check_shapes, "params": check_params, "activations": check_activations}


def _measured_cases(expected, submitted):
    """(reference, submission or None, why not) for each graded call."""
    if submitted is None or submitted.missing or not submitted.cases:
        return None
    by_case = {c.case: c for c in submitted.cases}
    return [(ref, by_case.get(ref.case)) for ref in expected.cases]


def build_errors(cases, definition_errors=()):
    """The error messages behind a function's failed calls, for the Keras 2 hints; a failed definition
    of the student's counts where a call failed on a name it should have defined."""
    errors = [sub.error for _, sub in cases if sub is not None and sub.error]
    missing = {n for e in errors for n in re.findall(r"name '(\w+)' is not defined", e)}
    return errors + [d for d in definition_errors if any(re.search(rf"\b{n}\b", d) for n in missing)]


def judge_function(expected, submitted, points, definition_errors=()):
    """All four aspects of one function: expected and submitted FunctionMeasurements in, Checks out.

    A failed check carries the hints (grader.diagnosis) for the mistakes recognised behind it.
    `definition_errors` are the messages of the student's definitions that failed to run.
    """
    cases = _measured_cases(expected, submitted)
    if cases is None:
        note = (submitted.missing if submitted is not None and submitted.missing else
                f"{expected.function} could not be measured")
        return tuple(Check(expected.function, a, points[a], (), note) for a in ASPECTS)
    outcomes = {a: [] for a in ASPECTS}
    diagnosable = []
    for ref, sub in cases:
        if sub is None:
            for a in ASPECTS:
                outcomes[a].append(CaseOutcome(ref.case, False, (f"{ref.call} was not measured",)))
            continue
        if sub.error and len(sub.layers) <= 1:  # nothing was built: one clear message, not one per layer
            for a in ASPECTS:
                outcomes[a].append(CaseOutcome(ref.case, False, (f"{sub.call} failed: {sub.error}",)))
            continue
        pairs = match_layers(ref.layers, sub.layers)
        diagnosable.append((ref.case, ref, sub, pairs))
        for a in ASPECTS:
            msgs = ASPECT_CHECKS[a](ref, sub, pairs)
            outcomes[a].append(CaseOutcome(ref.case, not msgs, _capped(msgs)))
    hints = diagnose(expected.function, diagnosable, build_errors(cases, definition_errors))
    checks = []
    for a in ASPECTS:
        failed = not all(o.passed for o in outcomes[a])
        mine = tuple(h for h in hints if a in h.aspects) if failed else ()
        checks.append(Check(expected.function, a, points[a], tuple(outcomes[a]), hints=mine))
    return tuple(checks)


def recognised_mistakes(expected, submitted, definition_errors=()):
    """Every hint grader.diagnosis finds for one function, whether or not a check failed (for tests and tools)."""
    measured = _measured_cases(expected, submitted) or []
    cases = [(ref.case, ref, sub, match_layers(ref.layers, sub.layers))
             for ref, sub in measured if sub is not None and len(sub.layers) > 1]
    return diagnose(expected.function, cases, build_errors(measured, definition_errors))


# ----------------------------------------------------------------------------- side-by-side view


def _cells(layer, layers):
    name = layer.name if layer.kind in NAMED_KINDS or layer.kind == "input" else describe(layer, layers)
    settings = ", ".join(f"{k}={fmt(v)}" for k, v in sorted(layer.config.items()))
    return (name, layer.class_name, _shape_text(layer.output_shape), f"{layer.params:,}", settings)


def _activation_cell(ref, sub, r, s):
    """'matches' or 'differs' for a layer's outputs, over both modes; '' when not measured."""
    agree = layer_outputs_agree(ref, sub, r, s)
    return "" if agree is None else "matches" if agree else "differs"


def layer_table(ref, sub, pairs, function=""):
    """The reference's layers beside the submission's, in the reference's order; extra layers after their parent."""
    partner_of = {v: k for k, v in pairs.items()}
    extras = {}
    for s in sub.layers:
        if s.index not in partner_of:
            anchor = max((partner_of[p] for p in s.parents if p in partner_of), default=-1)
            extras.setdefault(anchor, []).append(s)
    rows = [LayerRow((), _cells(s, sub.layers) + ("",)) for s in extras.get(-1, [])]
    for r in ref.layers:
        want = _cells(r, ref.layers)
        s = sub.layers[pairs[r.index]] if r.index in pairs else None
        if s is None:
            rows.append(LayerRow(want + ("",), ()))
        else:
            act = _activation_cell(ref, sub, r, s)
            got = _cells(s, sub.layers) + (act,)
            differs = [i for i, (w, g) in enumerate(zip(want, got)) if i != 0 and i != 1 and w != g]
            if r.kind in NAMED_KINDS and r.name != s.name:
                differs.insert(0, 0)
            if r.kind != s.kind:
                differs.insert(0, 1)
            if act == "differs":
                differs.append(5)
            rows.append(LayerRow(want + ("",), got, tuple(sorted(set(differs)))))
        rows += [LayerRow((), _cells(x, sub.layers) + ("",)) for x in extras.get(r.index, [])]
    return LayerTable(function, ref.case, sub.call, tuple(rows))


def layer_tables(expected, submitted):
    """One LayerTable per graded call that built something."""
    cases = _measured_cases(expected, submitted) or []
    return tuple(layer_table(ref, sub, match_layers(ref.layers, sub.layers), expected.function)
                 for ref, sub in cases if sub is not None and len(sub.layers) > 1)
