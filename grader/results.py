"""Grading outcomes as plain values; totals are derived, never stored."""

from dataclasses import dataclass


@dataclass(frozen=True)
class CaseOutcome:
    """One aspect of one graded call: passed or not, and why."""

    case: str
    passed: bool
    messages: tuple = ()


@dataclass(frozen=True)
class Check:
    """One function's one aspect, over all its cases; scores partial credit per case."""

    function: str
    aspect: str
    max_score: float
    outcomes: tuple = ()
    note: str = ""  # why the check could not run at all (function missing, grading failed)

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
        return tuple(lines)


@dataclass(frozen=True)
class GradeResult:
    """Everything known about one submission. `error` set means grading itself failed."""

    submission: str
    checks: tuple = ()
    notes: tuple = ()
    error: str = ""
    seconds: float = 0.0

    @property
    def score(self):
        return round(sum(c.score for c in self.checks), 2)

    @property
    def max_score(self):
        return round(sum(c.max_score for c in self.checks), 2)
