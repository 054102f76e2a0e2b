"""The four aspects, judged in the trusted process from validated measurements.

Pure functions: (expected, submitted) measurements in, Check results out.
"""

import re

import numpy as np

from grader.agreement import arrays_agree, first_differing_layer, layer_outputs_agree, tolerance
from grader.diagnosis import diagnose, letter_l_note
from grader.matching import NAMED_KINDS, describe, fmt, kind_label, match_layers
from grader.measurement import MODES
from grader.results import MEMORY_ERRORS, CaseOutcome, Check, Finding, LayerRow, LayerTable
from grader import versions
from grader.versions import ASPECTS as ALL_ASPECTS

MAX_MESSAGES = 6
MAX_FINDINGS = 64  # per case and aspect, as data for the class report (results.json stays small)


def _shape_text(shape):
    return fmt(tuple(shape))


def _setting_differences(ref, sub):
    """[(key, expected value, found value)] for each hyperparameter that differs."""
    return [(key, want, sub.config.get(key)) for key, want in ref.config.items() if sub.config.get(key) != want]


def config_differences(ref, sub):
    """'expected strides (1, 1), found (2, 2)' for each hyperparameter that differs."""
    return [f"expected {key} {fmt(want)}, found {fmt(got)}" for key, want, got in _setting_differences(ref, sub)]


def _settings_detail(ref, sub):
    """The differing settings as the class report groups them: 'strides (1, 1) for (2, 2)'."""
    return "; ".join(f"{key} {fmt(got)} for {fmt(want)}" for key, want, got in _setting_differences(ref, sub))


def _capped(messages):
    messages = list(messages)
    if len(messages) > MAX_MESSAGES:
        extra = len(messages) - MAX_MESSAGES
        messages = messages[:MAX_MESSAGES] + [f"... and {extra} more"]
    return tuple(messages)


def _article(word):
    return "an" if word[:1].upper() in "AEIOU" else "a"


def _texts(findings):
    return [f.text for f in findings]


# ----------------------------------------------------------------------------- names


def names_findings(ref, sub, pairs):
    out = []
    subs = sub.layers
    for r in ref.layers:
        if r.kind not in NAMED_KINDS:
            continue
        s = subs[pairs[r.index]] if r.index in pairs else None
        label = kind_label(r.kind)
        if s is None:
            why = " (the model failed before building it)" if sub.error else ""
            out.append(Finding(f"{r.name}: expected {_article(label)} {label} layer named '{r.name}', found none{why}",
                               "missing", r.name, label))
        elif s.name != r.name:
            out.append(Finding(f"{r.name}: expected the {label} layer here to be named '{r.name}', "
                               f"found '{s.name}'{letter_l_note(r.name, s.name)}", "name", r.name, r.name, s.name))
        elif s.kind != r.kind:
            out.append(Finding(f"{r.name}: expected {_article(label)} {label} layer, found {s.class_name}",
                               "kind", r.name, label, s.class_name))
    matched = set(pairs.values())
    for s in subs:
        if s.kind in NAMED_KINDS and s.index not in matched:
            out.append(Finding(f"{s.name}: unexpected {kind_label(s.kind)} layer (the reference has no such layer)",
                               "unexpected", s.name, "", kind_label(s.kind)))
    return out


def check_names(ref, sub, pairs):
    return _texts(names_findings(ref, sub, pairs))


# ----------------------------------------------------------------------------- shapes


def _error_finding(text, error):
    return Finding(text, "error", "", "", error)


def shapes_findings(ref, sub, pairs):
    """Output shapes of matched layers, and of the named layers that are missing (a block that
    returns its input unchanged has the right output shape, but none of the layers). Only the first
    layer of each chain of differences is reported: the layers after it differ because of it."""
    out = []
    missing = [r.name for r in ref.layers if r.kind in NAMED_KINDS and r.index not in pairs]
    if missing and not sub.error:
        out.append(Finding(f"{', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}: expected "
                           f"{len(missing)} more layer(s) with output shapes, found none",
                           "layers_missing", missing[0], f"{len(missing)} more layer(s)"))
    if sub.error:
        out.append(_error_finding(f"the model could not be built: {sub.error}", sub.error))
    elif tuple(sub.output_shape) != tuple(ref.output_shape):
        want, got = _shape_text(ref.output_shape), _shape_text(sub.output_shape)
        out.append(Finding(f"output: expected shape {want}, found {got}", "output_shape", "output", want, got))
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
        want, got = _shape_text(r.output_shape), _shape_text(s.output_shape)
        detail = [f"expected output shape {want}, found {got}"]
        out.append(Finding(f"{describe(r, ref.layers)}: " + "; ".join(detail + config_differences(r, s)),
                           "shape", describe(r, ref.layers), want, got, _settings_detail(r, s)))
    if consequences:
        out.append(Finding(f"{consequences} later layer(s) have other shapes as a consequence", "consequence"))
    return out


def check_shapes(ref, sub, pairs):
    return _texts(shapes_findings(ref, sub, pairs))


# ----------------------------------------------------------------------------- params


def _count_text(trainable, frozen):
    return f"{trainable + frozen:,} parameters ({frozen:,} non-trainable)"


def params_findings(ref, sub, pairs):
    out = []
    if not sub.error and (sub.trainable_params, sub.non_trainable_params) != (ref.trainable_params, ref.non_trainable_params):
        want = _count_text(ref.trainable_params, ref.non_trainable_params)
        got = _count_text(sub.trainable_params, sub.non_trainable_params)
        out.append(Finding(f"model: expected {want}, found {got}", "total_params", "model", want, got))
    for r in ref.layers:
        if r.params == 0 and r.index in pairs and sub.layers[pairs[r.index]].params == 0:
            continue
        want = _count_text(r.trainable_params, r.non_trainable_params)
        if r.index not in pairs:
            if r.params:
                out.append(Finding(f"{describe(r, ref.layers)}: expected {want}, found no such layer",
                                   "missing", describe(r, ref.layers), want))
            continue
        s = sub.layers[pairs[r.index]]
        if (s.trainable_params, s.non_trainable_params) != (r.trainable_params, r.non_trainable_params):
            got = _count_text(s.trainable_params, s.non_trainable_params)
            detail = [f"expected {want}, found {got}"]
            out.append(Finding(f"{describe(r, ref.layers)}: " + "; ".join(detail + config_differences(r, s)),
                               "params", describe(r, ref.layers), want, got, _settings_detail(r, s)))
    return out


def check_params(ref, sub, pairs):
    return _texts(params_findings(ref, sub, pairs))


# ----------------------------------------------------------------------------- activations


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
    r = first_differing_layer(ref, pairs, want, got)
    if r is None:
        return None
    partner_of = {s: r for r, s in pairs.items()}
    s = sub.layers[pairs[r.index]]
    extra = tuple(sub.layers[p] for p in s.parents if p not in partner_of)
    absent = tuple(ref.layers[p] for p in r.parents if p not in pairs)
    return r, extra, absent


def _first_difference(ref, sub, pairs, want, got):
    """`locate_difference` as (text for the student, layer, detail for the class report); None when every
    paired layer agrees."""
    found = locate_difference(ref, sub, pairs, want, got)
    if found is None:
        return None
    r, extra, absent = found
    layer = _label(r, ref.layers)
    if extra:
        what = ", ".join(describe(x, sub.layers) for x in extra)
        return (f"first difference: {what}, which the reference does not have, feeds {layer}", layer,
                f"fed by a layer the reference does not have ({', '.join(kind_label(x.kind, x.class_name) for x in extra)})")
    if absent:
        what = ", ".join(_label(x, ref.layers) for x in absent)
        return f"first difference: no layer found for {what}, which feeds {layer}", layer, f"no layer for {what}"
    return f"first layer that differs: {layer}", layer, "its own outputs differ, given the same inputs"


def first_difference(ref, sub, pairs, want, got):
    """`locate_difference` as text for the student; '' when every paired layer agrees."""
    found = _first_difference(ref, sub, pairs, want, got)
    return found[0] if found else ""


def mode_label(mode, how=None):
    """'training mode' as feedback names it, with how the mode ran when the function was called
    with its own argument: 'training mode (called with training=True)'."""
    call = (how or {}).get("call") or {}
    if not call:
        return f"{mode} mode"
    return f"{mode} mode (called with {', '.join(f'{k}={v!r}' for k, v in call.items())})"


def activations_findings(ref, sub, pairs, modes=None):
    if sub.error:
        return [_error_finding(f"could not be run: {sub.error}", sub.error)]
    out = []
    for mode in MODES:
        label = mode_label(mode, (modes or {}).get(mode))
        want, got = ref.activations[mode], sub.activations[mode]
        first = _first_difference(ref, sub, pairs, want, got)
        output_ok = arrays_agree(want.output, got.output)
        if output_ok and not first:
            continue
        layer, detail = (first[1], first[2]) if first else ("output", "")
        if want.output.shape != got.output.shape:
            head = f"{label}: expected output of shape {_shape_text(want.output.shape)}, found {_shape_text(got.output.shape)}"
            detail = detail or "another output shape"
        elif not output_ok:
            diff = float(np.nanmax(np.abs(want.output - got.output))) if np.all(np.isfinite(got.output)) else float("nan")
            head = f"{label}: output differs from the reference (largest difference {diff:.4g}, tolerance {tolerance(want.output):.2g})"
            detail = detail or "the output differs"
        else:
            head = f"{label}: output matches, but an intermediate layer does not"
        if first:
            head += f"; {first[0]}"
        else:
            missing = [describe(r, ref.layers) for r in ref.layers if r.index not in pairs and r.kind != "input"]
            extra_idx = set(range(len(sub.layers))) - set(pairs.values())
            extra = [describe(s, sub.layers) for s in sub.layers if s.index in extra_idx and s.kind != "input"]
            if missing:
                head += "; no layer found for: " + ", ".join(missing[:3])
            if extra:
                head += "; layers the reference does not have: " + ", ".join(extra[:3])
        out.append(Finding(head, "outputs", layer, "", "", detail))
    return out


def check_activations(ref, sub, pairs):
    return _texts(activations_findings(ref, sub, pairs))


ASPECT_FINDINGS = {"names": names_findings, "shapes": shapes_findings, "params": params_findings,
                   "activations": activations_findings}


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


def _findings(aspect, ref, sub, pairs, modes):
    if aspect == "activations":
        return activations_findings(ref, sub, pairs, modes)
    return ASPECT_FINDINGS[aspect](ref, sub, pairs)


def judge_function(expected, submitted, points, definition_errors=(), version=None):
    """The graded aspects of one function (those `points` gives): expected and submitted
    FunctionMeasurements in, Checks out.

    A failed check carries the hints (grader.diagnosis) for the mistakes recognised behind it.
    `definition_errors` are the messages of the student's definitions that failed to run.
    `version` (grader.versions.Version) says how the modes ran and words some hints; the default one when None.
    """
    version = version or versions.get()
    aspects = tuple(a for a in ALL_ASPECTS if a in points)
    modes = version.modes_of(expected.function)
    cases = _measured_cases(expected, submitted)
    if cases is None:
        note = (submitted.missing if submitted is not None and submitted.missing else
                f"{expected.function} could not be measured")
        failed = [e.split(" (in: ")[0] for e in definition_errors
                  if re.search(rf"\b{expected.function}\b", e.partition(" (in: ")[2])]
        if failed and submitted is not None and submitted.missing.endswith("is not defined"):
            note += f": the cell that defines it failed ({failed[-1]})"
        limit = submitted.limit if submitted is not None else ""
        why = "limit" if limit else "not_defined" if submitted is not None and submitted.missing else "not_measured"
        return tuple(Check(expected.function, a, points[a], (), note, limit=limit, why=why) for a in aspects)
    outcomes = {a: [] for a in aspects}
    diagnosable = []
    for ref, sub in cases:
        if sub is None:
            text = f"{ref.call} was not measured"
            for a in aspects:
                outcomes[a].append(CaseOutcome(ref.case, False, (text,), (Finding(text, "not_measured"),)))
            continue
        if sub.error and len(sub.layers) <= 1:  # nothing was built: one clear message, not one per layer
            text = f"{sub.call} failed: {sub.error}"
            for a in aspects:
                outcomes[a].append(CaseOutcome(ref.case, False, (text,), (_error_finding(text, sub.error),)))
            continue
        pairs = match_layers(ref.layers, sub.layers)
        diagnosable.append((ref.case, ref, sub, pairs))
        for a in aspects:
            found = _findings(a, ref, sub, pairs, modes)
            outcomes[a].append(CaseOutcome(ref.case, not found, _capped(_texts(found)), tuple(found[:MAX_FINDINGS])))
    hints = diagnose(expected.function, diagnosable, build_errors(cases, definition_errors), version)
    # A call that ran out of memory hit the kernel's limit: the class report lists it with the others.
    limit = "memory" if any(sub is not None and sub.error_type in MEMORY_ERRORS for _, sub in cases) else ""
    checks = []
    for a in aspects:
        failed = not all(o.passed for o in outcomes[a])
        mine = tuple(h for h in hints if a in h.aspects) if failed else ()
        checks.append(Check(expected.function, a, points[a], tuple(outcomes[a]), hints=mine,
                            limit=limit if failed else ""))
    return tuple(checks)


def recognised_mistakes(expected, submitted, definition_errors=(), version=None):
    """Every hint grader.diagnosis finds for one function, whether or not a check failed (for tests and tools)."""
    measured = _measured_cases(expected, submitted) or []
    cases = [(ref.case, ref, sub, match_layers(ref.layers, sub.layers))
             for ref, sub in measured if sub is not None and len(sub.layers) > 1]
    return diagnose(expected.function, cases, build_errors(measured, definition_errors), version or versions.get())


# ----------------------------------------------------------------------------- side-by-side view


def _cells(layer, layers):
    name = layer.name if layer.kind in NAMED_KINDS or layer.kind == "input" else describe(layer, layers)
    settings = ", ".join(f"{k}={fmt(v)}" for k, v in sorted(layer.config.items()))
    return (name, layer.class_name, _shape_text(layer.output_shape), f"{layer.params:,}", settings)


def _activation_cell(ref, sub, r, s):
    """'matches' or 'differs' for a layer's outputs, over both modes; '' when not measured."""
    agree = layer_outputs_agree(ref, sub, r, s)
    return "" if agree is None else "matches" if agree else "differs"


def layer_table(ref, sub, pairs, function="", names=True):
    """The reference's layers beside the submission's, in the reference's order; extra layers after their parent.

    A name is marked as differing only where the version prescribes `names`."""
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
            if names and r.kind in NAMED_KINDS and r.name != s.name:
                differs.insert(0, 0)
            if r.kind != s.kind:
                differs.insert(0, 1)
            if act == "differs":
                differs.append(5)
            rows.append(LayerRow(want + ("",), got, tuple(sorted(set(differs)))))
        rows += [LayerRow((), _cells(x, sub.layers) + ("",)) for x in extras.get(r.index, [])]
    return LayerTable(function, ref.case, sub.call, tuple(rows))


def layer_tables(expected, submitted, version=None):
    """One LayerTable per graded call that built something."""
    cases = _measured_cases(expected, submitted) or []
    names = (version or versions.get()).names
    return tuple(layer_table(ref, sub, match_layers(ref.layers, sub.layers), expected.function, names)
                 for ref, sub in cases if sub is not None and len(sub.layers) > 1)
