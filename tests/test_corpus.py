"""Each real mistake loses exactly the aspects it should, naming the layer; each correct variant keeps full marks.

Measured in-process with the grader's own probe and judged by its own checks, so
the whole corpus runs in a minute. test_grade_e2e.py runs the same path through a kernel.
"""

import pytest

from corpus import EQUIVALENTS, HINTS, MISTAKES
from corpus import measure as measure_variant
from grader.agreement import fingerprints_agree
from grader.checks import judge_function, locate_difference, recognised_mistakes
from grader.matching import match_layers
from grader.measurement import MODES
from grader.spec import POINTS


def grade_variant(variant, expected_outputs, got=None):
    got = measure_variant(variant, expected_outputs) if got is None else got
    return judge_function(expected_outputs[variant.function], got, POINTS[variant.function])


def _param(v):
    marks = [pytest.mark.slow] if v.function == "ResNet50" else []
    return pytest.param(v, id=v.id, marks=marks)


def test_corpus_is_large_enough():
    assert len(MISTAKES) >= 15 and len(EQUIVALENTS) >= 4
    assert {v.function for v in MISTAKES} == {v.function for v in EQUIVALENTS} == set(POINTS)


@pytest.mark.parametrize("variant", [_param(v) for v in MISTAKES])
def test_mistake_loses_its_aspects_and_names_the_layer(variant, expected_outputs):
    got = measure_variant(variant, expected_outputs)
    checks = grade_variant(variant, expected_outputs, got)
    lost = tuple(c.aspect for c in checks if c.score < c.max_score)
    assert lost == variant.loses
    feedback = "\n".join(m for c in checks for m in c.messages)
    assert variant.names in feedback
    # the mistake is named by its own hint, shown in the feedback, and by no other hint
    hints = recognised_mistakes(expected_outputs[variant.function], got)
    assert [h.id for h in hints] == ([HINTS[variant.id]] if variant.id in HINTS else [])
    for h in hints:
        assert f"hint: {h.text}" in feedback
    assert_first_difference_is_true(expected_outputs[variant.function], got)


def assert_first_difference_is_true(expected, got):
    """The layer the feedback names as the first that differs has outputs that differ, given the same inputs;
    where its inputs are not the same, what feeds it (an extra layer, or one left out) is named instead."""
    by_case = {c.case: c for c in got.cases}
    for ref in expected.cases:
        sub = by_case[ref.case]
        if sub.error:
            continue
        pairs = match_layers(ref.layers, sub.layers)
        for mode in MODES:
            want, found = ref.activations[mode], sub.activations[mode]
            located = locate_difference(ref, sub, pairs, want, found)
            if located is None:
                continue
            r, extra, absent = located
            s = sub.layers[pairs[r.index]]
            assert s.index not in found.layers or not fingerprints_agree(want.layers[r.index], found.layers[s.index])
            if extra or absent:
                assert all(x.index not in pairs.values() for x in extra) and all(a.index not in pairs for a in absent)
                continue
            assert sorted(s.parents) == sorted(pairs[p] for p in r.parents)
            for p in r.parents:
                if p in want.layers:
                    assert fingerprints_agree(want.layers[p], found.layers[pairs[p]]), (r.name, ref.layers[p].name)


def test_every_hint_is_shown_on_a_real_mistake():
    assert set(HINTS) <= {v.id for v in MISTAKES}
    assert set(HINTS.values()) >= {"missing_final_relu", "relu_before_add", "shortcut_stride", "hard_coded_f",
                                   "hard_coded_s", "hard_coded_classes", "bn_axis", "padding", "filters_order",
                                   "missing_block"}


@pytest.mark.parametrize("variant", [_param(v) for v in EQUIVALENTS])
def test_equivalent_answer_gets_full_marks(variant, expected_outputs):
    got = measure_variant(variant, expected_outputs)
    checks = grade_variant(variant, expected_outputs, got)
    assert [c.aspect for c in checks if not c.passed] == []
    assert recognised_mistakes(expected_outputs[variant.function], got) == ()
    assert sum(c.score for c in checks) == sum(POINTS[variant.function].values())
