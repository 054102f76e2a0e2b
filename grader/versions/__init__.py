"""The notebook's versions, each described as data in grader/versions/<id>/version.json.

What is particular to a version lives in its own files: its functions' signatures, the calls
that exercise them, the points, how its two modes are run, its reference, its expected outputs,
its assignment notebook and the course modules its students import. The engine reads these and
never branches on a version's id. `detect` tells a notebook's version from the signatures of
the functions it defines, before anything of it runs.
"""

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent.parent  # the project: solution/ and assignment/ are beside grader/
ASPECTS = ("names", "shapes", "params", "activations")

# How the two modes run when a version says nothing: the model is built once and run with
# training=False, then training=True (BatchNormalization follows the mode the model runs in).
MODEL_MODES = {"inference": {"call": {}, "run": False}, "training": {"call": {}, "run": True}}


class VersionError(ValueError):
    """A version that does not exist, or whose description is malformed."""


@dataclass(frozen=True)
class Version:
    id: str
    title: str
    order: int
    signatures: dict  # function -> "(X, f, filters, ...)" as inspect.signature writes it
    cases: dict  # function -> tuple of case dicts
    points: dict  # function -> {aspect: points}, aspects in ASPECTS order; a version may grade fewer
    modes: dict  # function -> {mode: {"call": extra kwargs, "run": the training flag the model runs with}}
    reference: dict  # {"module": importable module, "blocks": path of its self-contained blocks' source}
    expected: str  # the expected outputs' folder, relative to the expected root ('.' for the root itself)
    notebook: str  # the assignment notebook, relative to the project
    course_modules: dict = field(default_factory=dict)  # module name -> its source, relative to grader/versions
    hints: dict = field(default_factory=dict)  # hint id -> the text this version gives it
    keras2_defaults: tuple = ()  # Keras 2 defaults its notebook was taught with (grader.probe.KERAS2_DEFAULTS)

    @property
    def functions(self):
        return tuple(self.signatures)

    def aspects(self, function):
        return tuple(self.points[function])

    def modes_of(self, function):
        return self.modes.get(function, MODEL_MODES)

    @property
    def names(self):
        """Whether the version prescribes layer names (then names are graded)."""
        return any("names" in p for p in self.points.values())

    def parameters(self, function):
        """The parameter names of a function's signature, in order."""
        try:
            return _parameters(ast.parse(f"def _{self.signatures[function]}: pass").body[0])
        except SyntaxError:
            return ()

    def expected_dir(self, root):
        return Path(root) if self.expected == "." else Path(root) / self.expected

    def blocks_source(self):
        return (ROOT / self.reference["blocks"]).read_text()

    def course_sources(self):
        """{module name: source} of the course modules a student's import cell expects."""
        return {name: (HERE / path).read_text() for name, path in self.course_modules.items()}


def _parameters(fn):
    """A def's parameter names, in order."""
    a = fn.args
    return tuple(p.arg for p in a.posonlyargs + a.args + a.kwonlyargs)


def _load(folder):
    try:
        raw = json.loads((folder / "version.json").read_text())
        points = {f: {a: int(p[a]) for a in ASPECTS if a in p} for f, p in raw["points"].items()}
        version = Version(
            id=str(raw["id"]), title=str(raw["title"]), order=int(raw.get("order", 99)),
            signatures=dict(raw["signatures"]), cases={f: tuple(c) for f, c in raw["cases"].items()},
            points=points, modes=dict(raw.get("modes", {})), reference=dict(raw["reference"]),
            expected=str(raw["expected"]), notebook=str(raw["notebook"]),
            course_modules=dict(raw.get("course_modules", {})), hints=dict(raw.get("hints", {})),
            keras2_defaults=tuple(raw.get("keras2_defaults", ())))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise VersionError(f"{folder / 'version.json'} is malformed: {exc}") from None
    if version.id != folder.name:
        raise VersionError(f"{folder / 'version.json'}: id {version.id!r} is not its folder's name")
    if set(version.cases) != set(version.signatures) or set(version.points) != set(version.signatures):
        raise VersionError(f"{version.id}: signatures, cases and points must name the same functions")
    if sum(sum(p.values()) for p in points.values()) != 100:
        raise VersionError(f"{version.id}: the points add up to {sum(sum(p.values()) for p in points.values())}, not 100")
    return version


def _discover():
    found = [_load(p.parent) for p in sorted(HERE.glob("*/version.json"))]
    return {v.id: v for v in sorted(found, key=lambda v: (v.order, v.id))}


VERSIONS = _discover()
DEFAULT = next(iter(VERSIONS))  # the first in order: the original notebook


def ids():
    return tuple(VERSIONS)


def get(version_id=None):
    """The version with this id (the default one for None)."""
    key = DEFAULT if version_id in (None, "") else str(version_id)
    if key not in VERSIONS:
        raise VersionError(f"no notebook version {key!r}; the versions are: {', '.join(VERSIONS)}")
    return VERSIONS[key]


def defined_signatures(sources):
    """{function: its parameter names} for each graded function the sources define (the last definition wins)."""
    graded = {f for v in VERSIONS.values() for f in v.functions}
    found = {}
    for source in sources:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in graded:
                found[node.name] = _parameters(node)
    return found


@dataclass(frozen=True)
class Detection:
    version: Version
    how: str  # one line for the student and the instructor


def detect(sources, forced=None):
    """The version a notebook was written for, from the signatures of the functions it defines.

    Each version scores the parameter names its signatures share with the notebook's functions
    (a function with exactly a version's parameters scores most); the best score wins, the
    earlier version on a tie. `forced` (an id) wins over all.
    """
    if forced:
        version = get(forced)
        return Detection(version, f"graded as the {version.id} version (chosen by the instructor)")
    return detect_parameters(defined_signatures(sources))


def detect_parameters(defined):
    """`detect` from {function: its parameter names} (a student's own functions, in the self-checks)."""
    if not defined:
        version = get()
        return Detection(version, f"no graded function defined: graded as the {version.id} version")

    def score(version):
        total = 0.0
        for function, params in defined.items():
            if function not in version.signatures:
                continue
            want = version.parameters(function)
            total += 2.0 if params == want else len(set(params) & set(want)) / max(len(set(params) | set(want)), 1)
        return total

    best = max(VERSIONS.values(), key=lambda v: (score(v), -v.order))
    shown = ", ".join(f"{f}({', '.join(p)})" for f, p in defined.items())
    return Detection(best, f"graded as the {best.id} version, from its signatures: {shown}")
