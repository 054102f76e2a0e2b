"""Identical answers: group submissions whose graded code is the same once spelling is normalised.

Pure. The graded code of a function is its last top-level definition plus the top-level
helpers and constants it uses (not the other graded functions, which are compared on
their own). Normalising drops what does not change the program and varies between
people who copy nothing: comments, docstrings, blank lines, quote style (all gone in a
parsed and unparsed AST), and the keyword or positional spelling of the arguments of
the layers the assignment uses (`Conv2D(F1, kernel_size=(1, 1))` and `Conv2D(F1, (1, 1))`),
with keywords in name order.

Most students write the reference answer, so sharing it means little: a group is ranked by
how uncommon its shared code is, measured on the lines where it differs from the most
common version, each line weighted by how few students have it (log2 of class size over
students with the line; a missing common line, by how few students lack it).
"""

import ast
import difflib
import math
from collections import Counter
from dataclasses import dataclass

from grader.spec import FUNCTIONS

# The leading parameters of the calls students write, in order: positional arguments are
# rewritten as these keywords. Keras 3's signatures (checked against keras by a test);
# the graded functions' own signatures from grader/spec.py.
POSITIONAL = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "data_format", "dilation_rate", "groups",
               "activation", "use_bias", "kernel_initializer"),
    "BatchNormalization": ("axis", "momentum", "epsilon", "center", "scale"),
    "Activation": ("activation",),
    "ReLU": ("max_value", "negative_slope", "threshold"),
    "Dense": ("units", "activation", "use_bias", "kernel_initializer"),
    "MaxPooling2D": ("pool_size", "strides", "padding", "data_format"),
    "AveragePooling2D": ("pool_size", "strides", "padding", "data_format"),
    "ZeroPadding2D": ("padding", "data_format"),
    "Flatten": ("data_format",),
    "Input": ("shape", "batch_size", "dtype"),
    "Model": ("inputs", "outputs", "name"),
    "identity_block": ("X", "f", "filters", "stage", "block"),
    "convolutional_block": ("X", "f", "filters", "stage", "block", "s"),
    "ResNet50": ("input_shape", "classes"),
}
POSITIONAL["Convolution2D"] = POSITIONAL["Conv2D"]
POSITIONAL["MaxPool2D"] = POSITIONAL["MaxPooling2D"]
POSITIONAL["AvgPool2D"] = POSITIONAL["AveragePooling2D"]


# ----------------------------------------------------------------------------- graded code


def _defined_names(stmt):
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        return [n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)]
    return []


def _used_names(stmt):
    return {n.id for n in ast.walk(stmt) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def graded_sources(sources):
    """{function: its graded code as the student wrote it, or None}, from the kept definitions' sources.

    The last definition of a name wins, as in Python. Imports are left out: they are
    shared boilerplate, and a changed import shows in the names the code then uses.
    """
    last = {}  # name -> (order, source, statement)
    for order, source in enumerate(sources):
        try:
            tree = ast.parse(source)
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        for stmt in tree.body:
            for name in _defined_names(stmt):
                last[name] = (order, source, stmt)
    out = {}
    for function in FUNCTIONS:
        if function not in last or not isinstance(last[function][2], (ast.FunctionDef, ast.AsyncFunctionDef)):
            out[function] = None
            continue
        keep, todo = {function}, [function]
        while todo:
            for name in _used_names(last[todo.pop()][2]):
                if name in last and name not in keep and name not in FUNCTIONS:
                    keep.add(name)
                    todo.append(name)
        parts = sorted({last[n][:2] for n in keep})
        out[function] = "\n\n".join(source for _, source in parts)
    return out


# ----------------------------------------------------------------------------- normalising


def _callee(call):
    f = call.func
    return f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")


class _Normalise(ast.NodeTransformer):
    def _drop_docstrings(self, node):
        body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
        node.body = body or [ast.Pass()]
        return node

    def visit_Module(self, node):
        self.generic_visit(node)
        return self._drop_docstrings(node)

    def visit_FunctionDef(self, node):
        self.generic_visit(node)
        return self._drop_docstrings(node)

    visit_AsyncFunctionDef = visit_ClassDef = visit_FunctionDef

    def visit_Call(self, node):
        self.generic_visit(node)
        names = POSITIONAL.get(_callee(node), ())
        if names and not any(isinstance(a, ast.Starred) for a in node.args) and len(node.args) <= len(names):
            given = {k.arg for k in node.keywords}
            moved = [ast.keyword(arg=n, value=a) for n, a in zip(names, node.args)]
            if not given & {k.arg for k in moved}:
                node.args = []
                node.keywords = moved + node.keywords
        named = sorted((k for k in node.keywords if k.arg is not None), key=lambda k: k.arg)
        node.keywords = named + [k for k in node.keywords if k.arg is None]
        return node


def normalise(source):
    """The canonical text of some code: equal for spellings of the same program; None if it does not parse."""
    if source is None:
        return None
    try:
        return ast.unparse(_Normalise().visit(ast.parse(source)))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None


# ----------------------------------------------------------------------------- grouping


@dataclass(frozen=True)
class Group:
    """Submissions with the same normalised graded code."""

    members: tuple  # submission names, in name order
    uncommonness: float  # 0 for the most common version; higher is rarer
    common: bool  # this is the most common version
    differences: tuple  # (function, '+' or '-', line, students with that line)


def version(codes, template=None):
    """{function: canonical code} for one submission, leaving out functions left as a template had them
    (`template`: {function: a template's canonical code, or a set of them})."""
    template = template or {}
    out = {}
    for function in FUNCTIONS:
        canonical = normalise(codes.get(function))
        stubs = template.get(function)
        stubs = stubs if isinstance(stubs, (set, frozenset)) else {stubs}
        if canonical is not None and canonical not in stubs:
            out[function] = canonical
    return out


def _lines(ver):
    return {(f, line) for f, code in ver.items() for line in code.splitlines()}


def _diff(base, ver):
    """(function, sign, line) for each line in which `ver` differs from `base`."""
    out = []
    for function in FUNCTIONS:
        a = base.get(function, "").splitlines()
        b = ver.get(function, "").splitlines()
        for line in difflib.unified_diff(a, b, lineterm="", n=0):
            if line[:1] in "+-" and not line.startswith(("+++", "---")):
                out.append((function, line[0], line[1:]))
    return out


def identical_groups(versions):
    """Groups of two or more submissions whose versions are equal, rarest shared code first.

    `versions` maps a submission's name to its version (see `version`); empty versions
    (nothing attempted, or no code) are left out.
    """
    versions = {name: v for name, v in versions.items() if v}
    n = len(versions)
    if n < 2:
        return []
    df = Counter(line for v in versions.values() for line in _lines(v))
    by_text = {}
    for name in sorted(versions):
        key = tuple(sorted(versions[name].items()))
        by_text.setdefault(key, []).append(name)

    def rarity(ver, base):
        total, rows = 0.0, []
        for function, sign, line in _diff(base, ver):
            have = df[(function, line)]
            total += math.log2(n / max(1, have if sign == "+" else n - have))
            rows.append((function, sign, line, have))
        return total, tuple(rows)

    # The most common version; among equally common ones, the one closest to all the others.
    def closeness(key):
        return sum(math.log2(n / df[line]) for line in _lines(dict(key)))

    common = min(by_text, key=lambda k: (-len(by_text[k]), closeness(k), k))
    base = dict(common)
    groups = []
    for key, members in by_text.items():
        if len(members) < 2:
            continue
        score, rows = (0.0, ()) if key == common else rarity(dict(key), base)
        groups.append(Group(tuple(members), round(score, 2), key == common, rows))
    return sorted(groups, key=lambda g: (g.common, -g.uncommonness, g.members))


def distinct_versions(versions):
    """How many different normalised versions of the graded code the class holds."""
    return len({tuple(sorted(v.items())) for v in versions.values() if v})
