"""Whether two measured activations agree: the tolerance every activation verdict uses.

Pure. Shared by the checks (which score) and the diagnosis (which names a setting
only where it changes what a layer computes).
"""

import numpy as np

from grader.spec import RTOL


def tolerance(expected):
    """Absolute tolerance scaled to the reference values' magnitude."""
    scale = float(np.max(np.abs(expected))) if expected.size else 0.0
    return RTOL * max(scale, 1e-2)


def deviation(expected, found):
    """How far `found` is from `expected`, in units of the scale `tolerance` uses (RTOL is the limit).

    inf when the shapes differ or `found` is not finite.
    """
    if expected.shape != found.shape or not np.all(np.isfinite(found)):
        return float("inf")
    scale = max(float(np.max(np.abs(expected))) if expected.size else 0.0, 1e-2)
    return float(np.max(np.abs(expected.astype("float64") - found), initial=0.0)) / scale


def arrays_agree(expected, found):
    if expected.shape != found.shape:
        return False
    if not np.all(np.isfinite(found)):
        return False
    return bool(np.max(np.abs(expected - found), initial=0.0) <= tolerance(expected))


def fingerprints_agree(want, got):
    return arrays_agree(want.channel, got.channel) and arrays_agree(want.spatial, got.spatial)


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
