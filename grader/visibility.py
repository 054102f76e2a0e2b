"""Which Gradescope tests students see: an instructor's JSON file, read once, looked up per test.

The file maps 'default', a function ('ResNet50'), an aspect ('activations') or a function
and aspect ('ResNet50/activations') to one of Gradescope's visibility values; the most
specific key wins. Parsing is pure (`parse`), so a bad file is rejected with a message
that says what to fix before any grading starts.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import GraderError
from grader.spec import ASPECTS, FUNCTIONS

VALUES = ("visible", "hidden", "after_due_date", "after_published")
DEFAULT_FILE = Path(__file__).with_name("visibility.json")


class VisibilityError(GraderError):
    """The visibility file is unreadable or names an unknown test or value."""


@dataclass(frozen=True)
class Visibility:
    """Visibility per test; `overall` is the top-level results.json value."""

    default: str = "visible"
    rules: dict = field(default_factory=dict)  # 'function', 'aspect' or 'function/aspect' -> value

    def of(self, function, aspect):
        for key in (f"{function}/{aspect}", function, aspect):
            if key in self.rules:
                return self.rules[key]
        return self.default

    @property
    def overall(self):
        return self.default


def _valid_key(key):
    function, _, aspect = key.partition("/")
    if not aspect:
        return key in FUNCTIONS or key in ASPECTS
    return function in FUNCTIONS and aspect in ASPECTS


def parse(obj, source="visibility"):
    """A Visibility from the file's JSON object; keys starting with '_' are comments."""
    if not isinstance(obj, dict):
        raise VisibilityError(f"{source}: expected a JSON object mapping tests to one of {', '.join(VALUES)}")
    rules = {}
    for key, value in obj.items():
        if key.startswith("_"):
            continue
        if value not in VALUES:
            raise VisibilityError(f"{source}: {key!r} has visibility {value!r}; use one of {', '.join(VALUES)}")
        if key != "default" and not _valid_key(key):
            raise VisibilityError(f"{source}: unknown test {key!r}; use a function ({', '.join(FUNCTIONS)}), "
                                  f"an aspect ({', '.join(ASPECTS)}) or 'function/aspect'")
        rules[key] = value
    return Visibility(rules.pop("default", "visible"), rules)


def load(path=DEFAULT_FILE):
    """Read and parse a visibility file (the I/O edge)."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise VisibilityError(f"cannot read the visibility file {path}: {exc}") from None
    return parse(obj, str(path))
