"""Grading outcomes as plain values; totals are derived, never stored."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Finding:
    """One difference a check found, as data: which layer, what kind of difference, and its values.

    `text` is the student's message; the other fields are what the class report groups by, so
    that rewording a message changes no grouping. `issue` is one of: name, missing, kind,
    unexpected (names); shape, output_shape, layers_missing, consequence (shapes); params,
    total_params (params); outputs (activations); error (the call failed). `detail` holds the
    settings that differ ('strides (1, 1) for (2, 2)') or, for outputs, where the difference starts.
    """

    text: str
    issue: str
    layer: str = ""
    expected: str = ""
    found: str = ""
    detail: str = ""

    def record(self):
        """The plain record results.json keeps (extra_data.findings)."""
        return {"issue": self.issue, "layer": self.layer, "expected": self.expected, "found": self.found,
                "detail": self.detail}


# Exceptions that mean the kernel ran out of memory (its `--memory` cap), not a mistake in the code.
MEMORY_ERRORS = frozenset({"MemoryError", "ResourceExhaustedError"})


@dataclass(frozen=True)
class Limit:
    """A limit a submission ran into (kind: timeout, crash, memory, no result), with the grader's reason."""

    kind: str
    reason: str
    function: str = ""  # '' for the notebook's definitions

    def record(self):
        return {"kind": self.kind, "reason": self.reason, "function": self.function}


@dataclass(frozen=True)
class CaseOutcome:
    """One aspect of one graded call: passed or not, and why (as text, and as Findings)."""

    case: str
    passed: bool
    messages: tuple = ()
    findings: tuple = ()


@dataclass(frozen=True)
class Hint:
    """A recognised mistake: an id for tests and tools, the text for the student, the aspects it explains."""

    id: str
    text: str
    aspects: tuple = ()


@dataclass(frozen=True)
class Check:
    """One function's one aspect, over all its cases; scores partial credit per case."""

    function: str
    aspect: str
    max_score: float
    outcomes: tuple = ()
    note: str = ""  # why the check could not run at all (function missing, grading failed)
    hints: tuple = ()  # Hints for the mistakes recognised behind this check's failure
    limit: str = ""  # the kind of limit (grader.results.Limit) that kept the function from being measured
    why: str = ""  # with `note`, why it could not run, as data: not_defined, not_measured, limit, grading_failed

    @property
    def passed_cases(self):
        return sum(o.passed for o in self.outcomes)

    @property
    def score(self):
        if not self.outcomes:
            return 0.0
        return round(self.max_score * self.passed_cases / len(self.outcomes), 2)

    @property
    def passed(self):
        return bool(self.outcomes) and all(o.passed for o in self.outcomes)

    @property
    def messages(self):
        lines = [self.note] if self.note else []
        for o in self.outcomes:
            lines.extend(f"[{o.case}] {m}" for m in o.messages)
        lines.extend(f"hint: {h.text}" for h in self.hints)
        return tuple(lines)

    @property
    def findings(self):
        """Every Finding of its cases, each once (the same difference in two calls is one)."""
        seen, out = set(), []
        for o in self.outcomes:
            for f in o.findings:
                key = f.record()
                key = tuple(sorted(key.items()))
                if key not in seen:
                    seen.add(key)
                    out.append(f)
        return tuple(out)


# The columns of the side-by-side layer view; "activations" is whether the layer's outputs agree.
LAYER_COLUMNS = ("layer", "type", "output shape", "parameters", "settings", "activations")


@dataclass(frozen=True)
class LayerRow:
    """One line of the side-by-side view: a reference layer and the submission's layer in its place.

    `expected` or `found` is () when one side has no such layer; `differs` holds the indices
    (into LAYER_COLUMNS) of the cells that differ.
    """

    expected: tuple = ()
    found: tuple = ()
    differs: tuple = ()

    @property
    def ok(self):
        return bool(self.expected) and bool(self.found) and not self.differs


@dataclass(frozen=True)
class LayerTable:
    """The side-by-side layers of one graded call."""

    function: str
    case: str
    call: str
    rows: tuple = ()

    @property
    def differences(self):
        return sum(not r.ok for r in self.rows)


@dataclass(frozen=True)
class GradeResult:
    """Everything known about one submission. `error` set means grading itself failed."""

    submission: str
    checks: tuple = ()
    notes: tuple = ()
    error: str = ""
    seconds: float = 0.0
    tables: tuple = ()  # LayerTables, one per graded call that built something
    error_kind: str = ""  # with `error`: 'unreadable' (the file is no notebook) or 'not graded' (the grader failed)
    limits: tuple = ()  # Limits the submission ran into
    version: tuple = ()  # (id, title, how it was told): the notebook version it was graded as

    @property
    def score(self):
        return round(sum(c.score for c in self.checks), 2)

    @property
    def max_score(self):
        return round(sum(c.max_score for c in self.checks), 2)
