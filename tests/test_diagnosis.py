"""Mistake recognition on hand-made layer tables: each recogniser fires on its mistake and not on the correct net.

The real mistakes and correct variants are in tests/corpus.py (see test_corpus.py, which checks every hint there).
"""

from grader.diagnosis import diagnose, letter_l_note
from grader.matching import match_layers
from grader.measurement import CaseMeasurement, Layer


def layer(i, name, kind, parents=(), config=None, shape=(None, 4, 4, 8)):
    return Layer(i, name, kind.title(), kind, config or {}, tuple(shape), 0, 0, tuple(parents), f"k{i}-{kind}")


def identity(relu_at="end", axis=(3,), padding="same", filters=(4, 6, 8), name="res2b_branch", bn="bn2b_branch"):
    """input -> conv/bn/relu x2 -> conv/bn -> add(input) -> relu, with one thing changed."""
    ls = [layer(0, "input_layer", "input")]
    prev = 0
    for part, f in zip("abc", filters):
        conv = {"filters": f, "padding": padding if part == "b" else "valid", "strides": (1, 1), "kernel_size": (1, 1)}
        ls.append(layer(len(ls), f"{name}2{part}", "conv2d", (prev,), conv))
        ls.append(layer(len(ls), f"{bn}2{part}", "batchnorm", (len(ls) - 1,), {"axis": axis}))
        prev = len(ls) - 1
        if part != "c" or relu_at == "before_add":
            ls.append(layer(len(ls), f"activation_{len(ls)}", "relu", (prev,)))
            prev = len(ls) - 1
    ls.append(layer(len(ls), "add", "add", (prev, 0)))
    if relu_at == "end":
        ls.append(layer(len(ls), "activation_out", "relu", (len(ls) - 1,)))
    return tuple(ls)


def hints(sub_layers, ref_layers=None):
    ref_layers = ref_layers or identity()
    ref = CaseMeasurement("f=2", "call", ref_layers)
    sub = CaseMeasurement("f=2", "call", sub_layers)
    return [h.id for h in diagnose("identity_block", [("f=2", ref, sub, match_layers(ref_layers, sub_layers))])]


def test_the_correct_block_gets_no_hint():
    assert hints(identity()) == []


def test_each_mistake_gets_its_hint():
    assert hints(identity(relu_at="none")) == ["missing_final_relu"]
    assert hints(identity(relu_at="before_add")) == ["relu_before_add"]
    assert hints(identity(axis=(1,))) == ["bn_axis"]
    assert hints(identity(padding="valid")) == ["padding"]
    assert hints(identity(filters=(6, 4, 8))) == ["filters_order"]


def test_hints_do_not_paste_code():
    ref = CaseMeasurement("f=2", "call", identity())
    for sub_layers in (identity(relu_at="none"), identity(relu_at="before_add"), identity(axis=(1,))):
        sub = CaseMeasurement("f=2", "call", sub_layers)
        for h in diagnose("identity_block", [("f=2", ref, sub, match_layers(ref.layers, sub_layers))]):
            assert "layers." not in h.text and "(X)" not in h.text and "axis=" not in h.text


def test_letter_l_is_named_only_for_the_typo():
    assert "digit one" in letter_l_note("res2a_branch1", "res2a_branchl")
    assert letter_l_note("res2a_branch1", "res2a_branch_1") == ""
    assert letter_l_note("res2a_branch2a", "res2a_branch2b") == ""


def test_keras2_spellings_get_what_keras3_wants():
    from grader.diagnosis import keras2_hints

    cases = {
        "TypeError: AveragePooling2D.__init__() missing 1 required positional argument: 'pool_size'": "keras2_pool_size",
        "ValueError: Unrecognized keyword arguments passed to Conv2D: {'border_mode': 'same'}": "keras2_keyword",
        "ValueError: Unrecognized keyword arguments passed to Conv2D: {'subsample': (2, 2)}": "keras2_keyword",
        "TypeError: Dense.__init__() missing 1 required positional argument: 'units'": "keras2_argument",
        "NameError: name 'merge' is not defined": "keras2_merge",
        "ModuleNotFoundError: No module named 'keras.layers.merge'": "keras2_module",
        "AttributeError: 'KerasTensor' object has no attribute 'output_shape'": "keras2_output_shape",
    }
    for error, hint in cases.items():
        assert [h.id for h in keras2_hints([error])] == [hint], error
    assert "'padding'" in keras2_hints(["Unrecognized keyword arguments passed to Conv2D: {'border_mode': 'x'}"])[0].text
    assert keras2_hints(["NameError: name 'X_shortcut' is not defined", "ValueError: A KerasTensor cannot be used"]) == ()


def test_a_failed_import_is_hinted_only_where_a_name_is_missing():
    from grader.checks import build_errors

    failed = CaseMeasurement("f=2", "call", error="NameError: name 'BatchNormalization' is not defined")
    built = CaseMeasurement("f=2", "call", identity())
    module = ("ModuleNotFoundError: No module named 'keras.layers.normalization' "
              "(in: from keras.layers.normalization import BatchNormalization)")
    other = "ModuleNotFoundError: No module named 'keras.utils.vis_utils' (in: from keras.utils.vis_utils import model_to_dot)"
    assert module in build_errors([(None, failed)], (module, other))
    assert other not in build_errors([(None, failed)], (module, other))  # it defines no name the call missed
    assert build_errors([(None, built)], (module,)) == []
