"""Grading outcomes as plain values; totals are derived, never stored."""

from dataclasses import dataclass


@dataclass(frozen=True)
class CaseOutcome:
    """One aspect of one graded call: passed or not, and why."""

    case: str
    passed: bool
    messages: tuple = ()


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

    @property
    def score(self):
        return round(sum(c.score for c in self.checks), 2)

    @property
    def max_score(self):
        return round(sum(c.max_score for c in self.checks), 2)
