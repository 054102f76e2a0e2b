"""The newer notebooks (2021, current) graded by the same engine: their corpus, their detection, and
whole notebooks of each version through a kernel, in one class with the original's.

The corpus is measured in-process by the grader's own probe, with each version's modes, and
judged by its own checks (as tests/test_corpus.py does for the original).
"""

import csv
import importlib
import json

import nbformat
import pytest

import notebooks
from corpus_versions import BASE, EQUIVALENTS, MISTAKES
from grader import expected, probe, versions
from grader.checks import judge_function, recognised_mistakes
from grader.cli import main
from grader.matching import reference_tables
from grader.measurement import from_wire


def _param(v):
    return pytest.param(v, id=v.id, marks=[pytest.mark.slow] if v.function == "ResNet50" else [])


def measure(variant):
    """(expected, measured) of a variant, as a kernel grading that version would measure it."""
    version = versions.get(variant.version)
    want = expected.load_all(version=version)[variant.function]
    namespace = {}
    exec(compile(variant.source(), variant.id, "exec"), namespace)
    blocks = None
    if variant.function == "ResNet50":  # graded on the version's correct blocks
        reference = importlib.import_module(version.reference["module"])
        blocks = {b: getattr(reference, b) for b in ("identity_block", "convolutional_block")}
    measured = probe.measure_function(variant.function, namespace[variant.function],
                                      list(version.cases[variant.function]), blocks, reference_tables(want),
                                      modes=version.modes_of(variant.function), keras2=version.keras2_defaults)
    return want, from_wire(probe.encode(measured), variant.function)


def judged(variant):
    version = versions.get(variant.version)
    want, got = measure(variant)
    checks = judge_function(want, got, version.points[variant.function], version=version)
    return checks, recognised_mistakes(want, got, version=version)


def test_each_version_has_its_corpus():
    for version in ("2021", "current"):
        mine = [v for v in EQUIVALENTS + MISTAKES if v.version == version]
        assert {v.function for v in mine} == {"identity_block", "convolutional_block", "ResNet50"}
        assert sum(v in MISTAKES for v in mine) >= 6 and sum(v in EQUIVALENTS for v in mine) >= 5


@pytest.mark.parametrize("variant", [_param(v) for v in EQUIVALENTS])
def test_correct_variant_gets_full_marks(variant):
    checks, hints = judged(variant)
    assert [c.aspect for c in checks if not c.passed] == []
    assert hints == ()
    assert [c.aspect for c in checks] == list(versions.get(variant.version).points[variant.function])
    assert "names" not in [c.aspect for c in checks]


@pytest.mark.parametrize("variant", [_param(v) for v in MISTAKES])
def test_mistake_loses_its_aspects_names_the_layer_and_its_hint(variant):
    checks, hints = judged(variant)
    assert tuple(c.aspect for c in checks if c.score < c.max_score) == variant.loses
    feedback = "\n".join(m for c in checks for m in c.messages)
    assert variant.names in feedback
    assert [h.id for h in hints] == ([variant.hint] if variant.hint else [])
    for h in hints:
        assert f"hint: {h.text}" in feedback


def test_a_block_ignoring_training_is_caught_only_when_it_runs_as_called():
    """Run as one model in training mode, Keras 3 puts every BatchNormalization on the batch's statistics,
    whatever it was called with: the 2021 block ignoring `training` would pass. The grader calls each layer
    as a plain call of the block would (grader.probe.replay), so it does not (the test above); here, the
    hiding is shown."""
    variant = next(v for v in MISTAKES if v.id == "2021-identity-bn-ignores-training")
    hidden = dict(versions.get("2021").modes_of("identity_block"))
    hidden = {mode: {"call": how["call"], "run": how["call"]["training"]} for mode, how in hidden.items()}
    version = versions.get("2021")
    want = expected.load_all(version=version)["identity_block"]
    namespace = {}
    exec(compile(variant.source(), variant.id, "exec"), namespace)
    measured = probe.measure_function("identity_block", namespace["identity_block"],
                                      list(version.cases["identity_block"]), None, reference_tables(want), modes=hidden)
    got = from_wire(probe.encode(measured), "identity_block")
    assert all(c.passed for c in judge_function(want, got, version.points["identity_block"], version=version))


@pytest.mark.parametrize("variant", [pytest.param(v, id=v.id) for v in EQUIVALENTS + MISTAKES])
def test_the_version_is_told_from_the_signatures(variant):
    """From the whole notebook: the 2021 ResNet50 alone has the original's signature."""
    others = [source for f, source in BASE[variant.version].items() if f != variant.function]
    assert versions.detect([variant.source(), *others]).version.id == variant.version


def test_detection_of_the_original_partial_and_empty_notebooks():
    original = notebooks.solution_sources()
    assert versions.detect(list(original.values())).version.id == "original"
    # a notebook with one newer function left as the original's stub still goes to the version it mostly is
    mixed = [BASE["2021"]["identity_block"], BASE["2021"]["convolutional_block"], original["ResNet50"]]
    assert versions.detect(mixed).version.id == "2021"
    assert versions.detect(["x = 1"]).version.id == versions.DEFAULT
    assert versions.detect([BASE["2021"]["identity_block"]], forced="current").version.id == "current"
    with pytest.raises(versions.VersionError, match="no notebook version 'v9'"):
        versions.get("v9")


def test_the_versions_are_data_and_add_up():
    for version in map(versions.get, versions.ids()):
        assert sum(sum(p.values()) for p in version.points.values()) == 100
        assert set(version.cases) == set(version.signatures) == set(version.points)
        assert version.names == (version.id == "original")
        for function, cases in version.cases.items():
            for case in cases:  # every argument the cases pass is a parameter of the signature
                assert set(case["kwargs"]) <= set(version.parameters(function)), (version.id, function, case["id"])


# ----------------------------------------------------------------------------- whole notebooks, one class

COURSE_IMPORTS = """import tensorflow as tf
import numpy as np
from tensorflow.keras.layers import Input, Add, Dense, Activation, ZeroPadding2D, Flatten, Conv2D, AveragePooling2D, MaxPooling2D
from tensorflow.keras.models import Model
from resnets_utils import *
from tensorflow.keras.initializers import random_uniform, glorot_uniform, constant, identity
from tensorflow.python.framework.ops import EagerTensor
from test_utils import summary, comparator
import public_tests
"""


def _notebook(version, sources):
    cells = [nbformat.v4.new_code_cell(COURSE_IMPORTS)]
    cells += [nbformat.v4.new_code_cell(s.replace(BASE[version]["identity_block"].split("\n\n")[0], ""))
              for s in sources]
    cells.append(nbformat.v4.new_code_cell("public_tests.identity_block_test(identity_block)"))
    return nbformat.v4.new_notebook(cells=cells)


@pytest.mark.slow
def test_a_class_mixing_the_versions_is_graded_each_as_its_own(tmp_path):
    """The original's solved notebook, a 2021 and a current one whose BatchNormalization arrives only
    through `from resnets_utils import *`, a hostile one that reaches for the reference and a broken one:
    one batch, each graded as its version, and the version in results.json."""
    folder = tmp_path / "class"
    folder.mkdir()
    notebooks.write(notebooks.solved(), folder / "original.ipynb")
    for version in ("2021", "current"):
        notebooks.write(_notebook(version, BASE[version].values()), folder / f"{version}.ipynb")
    hostile = dict(BASE["2021"], identity_block="from solution.v2021 import identity_block\n")
    notebooks.write(_notebook("2021", hostile.values()), folder / "hostile.ipynb")
    broken = dict(BASE["current"], ResNet50=BASE["current"]["ResNet50"].replace("def ResNet50(", "def ResNet50(("))
    notebooks.write(_notebook("current", broken.values()), folder / "broken.ipynb")
    out = tmp_path / "out"
    assert main(["grade", str(folder), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    results = {p.parent.name: json.loads(p.read_text()) for p in out.glob("*/results.json")}
    got = {name: (r["score"], r["extra_data"]["version"]["id"]) for name, r in results.items()}
    assert got == {"original": (100, "original"), "2021": (100, "2021"), "current": (100, "current"),
                   "hostile": (70, "2021"), "broken": (65, "current")}
    assert len(results["2021"]["tests"]) == 9 and "names" not in json.dumps([t["name"] for t in results["2021"]["tests"]])
    assert "Notebook version: graded as the 2021 version" in results["2021"]["output"]
    book = {row["submission"]: row for row in csv.DictReader((out / "gradebook.csv").open())}
    assert {name: row["version"] for name, row in book.items()} == {
        "original": "original", "2021": "2021", "current": "current", "hostile": "2021", "broken": "current"}
    assert book["2021"]["identity_block: names"] == "" and book["original"]["identity_block: names"] == "5.0"
    failed = [t for t in results["hostile"]["tests"] if t["score"] < t["max_score"]]
    assert {t["extra_data"]["function"] for t in failed} == {"identity_block"}
    assert ("identity_block is not defined: the cell that defines it failed (ModuleNotFoundError: No module named "
            "'solution')") in failed[0]["output"]  # the reference is not there to import


@pytest.mark.slow
def test_a_forced_version_grades_every_notebook_as_it(tmp_path):
    path = notebooks.write(_notebook("2021", BASE["2021"].values()), tmp_path / "n.ipynb")
    out = tmp_path / "out"
    assert main(["grade", str(path), "--out", str(out), "--notebook-version", "original"]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["extra_data"]["version"]["id"] == "original" and r["score"] < 20
    assert "identity_block() got an unexpected keyword argument 'stage'" in r["tests"][0]["output"]
