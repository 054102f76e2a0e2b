"""Whether two measured activations agree: the tolerance every activation verdict uses.

Pure. Shared by the checks (which score) and the diagnosis (which names a setting
only where it changes what a layer computes).
"""

import numpy as np

from grader.spec import RTOL


def _scale(*arrays):
    return max([float(np.max(np.abs(a))) for a in arrays if a.size] + [1e-2])


def tolerance(expected):
    """Absolute tolerance scaled to the reference values' magnitude."""
    return RTOL * _scale(expected)


def deviation(expected, found, scale=None):
    """How far `found` is from `expected`, relative to `scale` (by default the largest |expected|, at
    least 1e-2): the check's limit is RTOL. inf when the shapes differ or `found` is not finite."""
    if expected.shape != found.shape or not np.all(np.isfinite(found)):
        return float("inf")
    scale = _scale(expected) if scale is None else scale
    return float(np.max(np.abs(expected.astype("float64") - found), initial=0.0)) / scale


def fingerprint_deviation(want, got):
    """The larger deviation of a layer's two fingerprints, both relative to the larger of their magnitudes.

    Both are means of the same activations: a per-position mean over many channels can be near zero
    while the values it averages are not, so its rounding errors are measured against the layer's scale.
    """
    scale = _scale(want.channel, want.spatial)
    return max(deviation(want.channel, got.channel, scale), deviation(want.spatial, got.spatial, scale))


def arrays_agree(expected, found):
    return deviation(expected, found) <= RTOL


def fingerprints_agree(want, got):
    return fingerprint_deviation(want, got) <= RTOL


def first_differing_layer(ref, pairs, want, got):
    """The first paired reference layer (in the reference's order) whose partner's outputs differ from its own
    in one mode (`want`, `got`: ModeActivations), or whose partner has none measured; None when all agree."""
    for r in ref.layers:
        if r.index not in pairs or r.index not in want.layers:
            continue
        fp = got.layers.get(pairs[r.index])
        if fp is None or not fingerprints_agree(want.layers[r.index], fp):
            return r
    return None


def layer_outputs_agree(ref, sub, r, s):
    """Whether paired layers r (of case measurement ref) and s (of sub) give the same outputs in every mode.

    None when it cannot be told (no activations measured).
    """
    if not ref.activations or not sub.activations or sub.error:
        return None
    for mode, want in ref.activations.items():
        w = want.layers.get(r.index)
        g = sub.activations.get(mode).layers.get(s.index) if mode in sub.activations else None
        if w is None:
            return None
        if g is None or not fingerprints_agree(w, g):
            return False
    return True


def largest_deviation(ref, sub, pairs, mode):
    """The largest `deviation` over one mode's compared arrays: the output and every paired layer's
    fingerprint. The activations check passes the mode exactly when this is at most RTOL."""
    want, got = ref.activations[mode], sub.activations[mode]
    worst = deviation(want.output, got.output)
    for r, s in pairs.items():
        w, g = want.layers.get(r), got.layers.get(s)
        if w is None:
            continue
        if g is None:
            return float("inf")
        worst = max(worst, fingerprint_deviation(w, g))
    return worst
