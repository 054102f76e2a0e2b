"""Whole submissions through the CLI and a real kernel: what instructors and Gradescope see."""

import json

import nbformat
import pytest

import corpus
import notebooks
from grader.cli import main
from grader.spec import ASPECTS, FUNCTIONS

pytestmark = pytest.mark.slow
MISTAKE = {v.id: v for v in corpus.MISTAKES}


def grade(tmp_path, nb, name="submission"):
    path = notebooks.write(nb, tmp_path / f"{name}.ipynb")
    out = tmp_path / f"out-{name}"
    assert main(["grade", str(path), "--out", str(out)]) == 0
    return json.loads((out / "results.json").read_text())


def lost(results):
    return {(t["extra_data"]["function"], t["extra_data"]["aspect"]) for t in results["tests"] if t["score"] < t["max_score"]}


def test_solved_notebook_gets_full_marks_in_gradescope_schema(tmp_path):
    r = grade(tmp_path, notebooks.solved())
    assert r["score"] == 100
    assert len(r["tests"]) == len(FUNCTIONS) * len(ASPECTS)
    assert sum(t["max_score"] for t in r["tests"]) == 100
    for t in r["tests"]:
        assert set(t) >= {"name", "score", "max_score", "output", "visibility", "extra_data"}
        assert t["extra_data"]["function"] in FUNCTIONS and t["extra_data"]["aspect"] in ASPECTS


def test_blank_notebook_scores_zero(tmp_path):
    r = grade(tmp_path, notebooks.assignment())
    assert r["score"] == 0
    assert all(t["score"] == 0 for t in r["tests"])
    assert "identity_block" in r["tests"][0]["output"]


def test_one_mistake_per_function_costs_each_function_its_own_aspects(tmp_path):
    picks = {"identity_block": "identity-hardcoded-f", "convolutional_block": "conv-shortcut-stride-1",
             "ResNet50": "resnet-hardcoded-classes"}
    r = grade(tmp_path, notebooks.solved(**{f: MISTAKE[m].source() for f, m in picks.items()}))
    assert lost(r) == {(MISTAKE[m].function, a) for m in picks.values() for a in MISTAKE[m].loses}
    outputs = "\n".join(t["output"] for t in r["tests"])
    for m in picks.values():
        assert MISTAKE[m].names in outputs


def test_bundled_example_loses_what_its_two_mistakes_cost(tmp_path):
    nb = nbformat.read(notebooks.ROOT / "examples" / "example_submission.ipynb", as_version=4)
    r = grade(tmp_path, nb)
    assert lost(r) == {("identity_block", "activations"), ("convolutional_block", "names")}
    assert r["score"] == 85


def test_kernel_is_isolated_and_training_never_runs(tmp_path):
    """Foreign kernelspec, a cheat that imports the solution, and a training cell that must not run."""
    marker = tmp_path / "trained"
    cheat = ("def identity_block(X, f, filters, stage, block):\n"
             "    from solution import identity_block as reference\n"
             "    return reference(X, f, filters, stage, block)\n")
    peek = ("def convolutional_block(X, f, filters, stage, block, s=2):\n"
            "    import grader.expected\n"
            "    return X\n")
    nb = notebooks.solved(identity_block=cheat, convolutional_block=peek)
    nb.cells.append(nbformat.v4.new_code_cell(f"open({str(marker)!r}, 'w').write('x')\nmodel.fit(X_train, Y_train, epochs=10)"))
    nb.metadata["kernelspec"] = {"name": "no-such-kernel", "display_name": "Foreign", "language": "python"}
    r = grade(tmp_path, nb)
    by = {(t["extra_data"]["function"], t["extra_data"]["aspect"]): t for t in r["tests"]}
    assert all(by[("identity_block", a)]["score"] == 0 for a in ASPECTS)
    assert "No module named 'solution'" in by[("identity_block", "shapes")]["output"]
    assert all(by[("convolutional_block", a)]["score"] == 0 for a in ASPECTS)
    assert all(by[("ResNet50", a)]["score"] == by[("ResNet50", a)]["max_score"] for a in ASPECTS)
    assert not marker.exists()


def test_unreadable_submission_still_writes_results(tmp_path, capsys):
    bad = tmp_path / "bad.ipynb"
    bad.write_bytes(b"\x00\x01 not a notebook")
    out = tmp_path / "out"
    assert main(["grade", str(bad), "--out", str(out)]) == 0
    r = json.loads((out / "results.json").read_text())
    assert r["score"] == 0 and "not JSON" in r["output"]
    assert all(t["score"] == 0 and "not JSON" in t["output"] for t in r["tests"])
    assert "Grading failed" in capsys.readouterr().out


def test_a_folder_gets_one_results_folder_per_submission(tmp_path):
    folder = tmp_path / "class"
    folder.mkdir()
    (folder / "a.ipynb").write_text("")
    (folder / "b.ipynb").write_text("{}")
    assert main(["grade", str(folder), "--out", str(tmp_path / "out")]) == 0
    for name in ("a", "b"):
        assert json.loads((tmp_path / "out" / name / "results.json").read_text())["score"] == 0


def test_keras2_notebook_through_a_kernel_gets_equivalents_right_and_a_hint_for_a_failed_import(tmp_path):
    """The course's Keras 2 habits in one notebook: an import from a module Keras 3 lacks (its name is then
    missing in identity_block), 'same' padding on 1x1 convolutions and on the final pooling (equivalents)."""
    by_id = {v.id: v for v in corpus.EQUIVALENTS}
    identity = corpus.MISTAKE_SOURCES["identity-keras2-module"]
    nb = notebooks.solved(identity_block=identity,
                          convolutional_block=by_id["same-padding-1x1-conv-stride-s"].source(),
                          ResNet50=by_id["avgpool-same-padding"].source())
    r = grade(tmp_path, nb)
    assert lost(r) == {("identity_block", a) for a in ASPECTS}
    assert r["score"] == 70
    output = "\n".join(t["output"] for t in r["tests"] if t["extra_data"]["function"] == "identity_block")
    assert "name 'BatchNormalization' is not defined" in output
    assert "Keras 3 has no module keras.layers.normalization" in output
