"""Instructors choose which Gradescope tests students see; the most specific rule wins; bad files are refused."""

import json

import pytest

from grader import report, visibility
from grader.results import Check, CaseOutcome, GradeResult
from grader.spec import ASPECTS, FUNCTIONS, POINTS


EARNED = 100 - sum(POINTS[f]["activations"] for f in FUNCTIONS)  # every activations check fails


def result():
    checks = tuple(Check(f, a, POINTS[f][a], (CaseOutcome("c", a != "activations", ("differs",)),))
                   for f in FUNCTIONS for a in ASPECTS)
    return GradeResult("s.ipynb", checks)


def test_default_file_shows_everything():
    payload = report.gradescope(result(), visibility.load())
    assert payload["visibility"] == "visible"
    assert {t["visibility"] for t in payload["tests"]} == {"visible"}
    assert payload["output"].startswith(f"Score: {EARNED} / 100")


def test_most_specific_rule_wins_and_hidden_results_do_not_leak_through_the_summary(tmp_path):
    path = tmp_path / "vis.json"
    path.write_text(json.dumps({"_comment": "x", "default": "visible", "activations": "after_published",
                                "ResNet50": "hidden", "ResNet50/names": "after_due_date"}))
    payload = report.gradescope(result(), visibility.load(path))
    seen = {(t["extra_data"]["function"], t["extra_data"]["aspect"]): t["visibility"] for t in payload["tests"]}
    assert seen[("identity_block", "names")] == "visible"
    assert seen[("identity_block", "activations")] == "after_published"
    assert seen[("ResNet50", "activations")] == "hidden"  # the function's rule beats the aspect's
    assert seen[("ResNet50", "names")] == "after_due_date"
    assert payload["score"] == EARNED  # Gradescope still records the full score
    visible = sum(POINTS[f][a] for f in FUNCTIONS[:2] for a in ASPECTS if a != "activations")
    assert payload["output"].startswith(f"Score on the visible checks: {visible} / {visible}")


def test_a_single_value_still_applies_to_every_test():
    payload = report.gradescope(result(), "after_published")
    assert payload["visibility"] == "after_published"
    assert {t["visibility"] for t in payload["tests"]} == {"after_published"}


@pytest.mark.parametrize("obj, why", [
    ({"default": "shown"}, "use one of visible, hidden, after_due_date, after_published"),
    ({"ResNet51": "hidden"}, "unknown test 'ResNet51'"),
    ({"ResNet50/weights": "hidden"}, "unknown test"),
    (["visible"], "expected a JSON object"),
])
def test_bad_rules_are_refused_with_what_to_fix(obj, why):
    with pytest.raises(visibility.VisibilityError, match=why):
        visibility.parse(obj)


def test_unreadable_file_is_refused(tmp_path):
    (tmp_path / "v.json").write_text("{not json")
    with pytest.raises(visibility.VisibilityError, match="cannot read"):
        visibility.load(tmp_path / "v.json")
