"""What every version grades: the functions and aspects, and the activations' tolerance.

What is particular to a version (its signatures, cases, points, modes) is data in
grader/versions/<id>/version.json (see grader.versions). SIGNATURES, CASES and POINTS
here are the default version's, for the tools that know only that one.
"""

from grader import versions

ASPECTS = versions.ASPECTS

FUNCTIONS = ("identity_block", "convolutional_block", "ResNet50")

_DEFAULT = versions.get()
SIGNATURES = _DEFAULT.signatures
CASES = _DEFAULT.cases
POINTS = _DEFAULT.points

# Relative tolerance for activations, scaled by the largest reference magnitude.
RTOL = 1e-3
