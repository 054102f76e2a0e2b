"""Identical answers: what normalising sets aside, what it keeps, and how groups are ranked."""

import inspect

import nbformat
import pytest

import notebooks
from class_batch import restyled, twin_source
from grader import similarity
from grader.submission import extract_definitions

SOLUTION = notebooks.solution_sources()


def code_of(nb):
    return similarity.graded_sources([src for _, src in extract_definitions(nb).cells])


def test_comments_docstrings_blank_lines_quotes_and_argument_spelling_are_set_aside():
    a = SOLUTION["identity_block"]
    b = restyled(a)
    assert a != b and "'" in b and "kernel_size=(1, 1)" in b and "# unpack" in b
    assert similarity.normalise(a) == similarity.normalise(b)
    positional = "X = layers.Conv2D(F1, (1, 1), (1, 1), 'valid', name=n)(X)"
    keyword = 'X = layers.Conv2D(padding="valid", filters=F1, strides=(1, 1), kernel_size=(1, 1), name=n)(X)  # c'
    assert similarity.normalise(positional) == similarity.normalise(keyword)
    assert similarity.normalise("identity_block(X, 3, [1, 2, 3], 2, 'b')") == similarity.normalise(
        "identity_block(X, f=3, filters=[1, 2, 3], stage=2, block=\"b\")")


@pytest.mark.parametrize("a, b", [
    ("layers.Conv2D(F1, (1, 1), strides=(1, 1))", "layers.Conv2D(F1, (1, 1), strides=(2, 2))"),
    ("layers.Conv2D(F1, (1, 1))", "layers.Conv2D(F1, 1)"),  # equivalent for Keras, but spelt differently
    ("X = layers.Add()([X, X_shortcut])", "X = layers.Add()([X_shortcut, X])"),
    ("layers.Activation('relu')(X)", "layers.ReLU()(X)"),
    ("f(a, b)", "f(b, a)"),  # an unknown callee keeps its positional arguments as they are
])
def test_what_changes_the_program_or_its_spelling_is_kept(a, b):
    assert similarity.normalise(a) != similarity.normalise(b)


def test_positional_parameters_are_keras_own():
    """The table that turns positional arguments into keywords follows the installed Keras."""
    keras = pytest.importorskip("keras")
    layers = {"Conv2D": keras.layers.Conv2D, "BatchNormalization": keras.layers.BatchNormalization,
              "Activation": keras.layers.Activation, "ReLU": keras.layers.ReLU, "Dense": keras.layers.Dense,
              "MaxPooling2D": keras.layers.MaxPooling2D, "AveragePooling2D": keras.layers.AveragePooling2D,
              "ZeroPadding2D": keras.layers.ZeroPadding2D, "Flatten": keras.layers.Flatten}
    for name, cls in layers.items():
        params = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        assert tuple(params[:len(similarity.POSITIONAL[name])]) == similarity.POSITIONAL[name], name
    params = list(inspect.signature(keras.Input).parameters)
    assert tuple(params[:3]) == similarity.POSITIONAL["Input"]
    import solution
    for function in ("identity_block", "convolutional_block", "ResNet50"):
        assert similarity.POSITIONAL[function] == tuple(inspect.signature(getattr(solution, function)).parameters)


def test_graded_code_is_the_last_definition_with_its_helpers_and_constants_only():
    nb = notebooks.solved()
    code = code_of(nb)
    assert set(code) == {"identity_block", "convolutional_block", "ResNet50"}
    assert "def _names(" in code["identity_block"] and "def identity_block(" in code["identity_block"]
    assert "STAGES = " in code["ResNet50"] and "def identity_block" not in code["ResNet50"]
    assert "import" not in similarity.normalise(code["convolutional_block"])  # imports are not graded code
    nb.cells.append(nbformat.v4.new_code_cell("def identity_block(X, f, filters, stage, block):\n    return X\n"))
    assert code_of(nb)["identity_block"].strip().endswith("return X")  # the last definition wins, as in Python
    assert code_of(notebooks.filled({"ResNet50": "x = 1"}))["ResNet50"] is None


def test_functions_left_as_the_template_had_them_are_not_compared():
    template = {f: similarity.normalise(src) for f, src in code_of(notebooks.assignment()).items() if src}
    blank = similarity.version(code_of(notebooks.assignment()), template)
    assert blank == {}
    half = similarity.version(code_of(notebooks.filled({"identity_block": SOLUTION["identity_block"]})), template)
    assert set(half) == {"identity_block"}
    groups = similarity.identical_groups({"a": blank, "b": blank, "c": half})
    assert groups == []  # two untouched templates are not "identical answers"


def test_groups_rank_the_rarest_shared_code_first_and_show_where_it_differs():
    solved, relu = SOLUTION["identity_block"], SOLUTION["identity_block"].replace(
        'return layers.Activation("relu")(X)', "return X")
    twin, twin_restyled = twin_source(), restyled(twin_source())
    class_ = {**{f"right{i}": solved for i in range(5)}, "relu1": relu, "relu2": relu, "relu3": relu,
              "twin1": twin, "twin2": twin_restyled, "alone": relu.replace("F1, F2, F3 = filters", "F3, F2, F1 = filters")}
    versions = {name: similarity.version({"identity_block": src}) for name, src in class_.items()}
    groups = similarity.identical_groups(versions)
    assert [g.members for g in groups] == [("twin1", "twin2"), ("relu1", "relu2", "relu3"), tuple(f"right{i}" for i in range(5))]
    twins, relus, common = groups
    assert common.common and common.uncommonness == 0 and common.differences == ()
    assert twins.uncommonness > relus.uncommonness > 0
    added = [line for f, sign, line, n in twins.differences if sign == "+"]
    assert "    return keras.ops.relu(X + X_shortcut)" in added
    assert all(n == 2 for f, sign, line, n in twins.differences if sign == "+")
    assert ("identity_block", "-", "    return layers.Activation(activation='relu')(X)", 5) in twins.differences
    assert similarity.distinct_versions(versions) == 4


def test_a_class_of_unique_answers_has_no_groups():
    versions = {f"s{i}": {"identity_block": f"def identity_block():\n    return {i}"} for i in range(4)}
    assert similarity.identical_groups(versions) == []
    assert similarity.distinct_versions(versions) == 4


def test_every_versions_untouched_stubs_are_left_out_and_an_answer_is_not():
    """A class may mix the notebook's versions: the untouched stubs of each are no answers to compare."""
    from grader import class_files

    template = class_files.template_version()
    assert all(len(stubs) == 3 for stubs in template.values())  # one per version
    for notebook in class_files.TEMPLATE:
        assert similarity.version(class_files.graded_code_of(notebook), template) == {}, notebook
    answered = dict(class_files.graded_code_of(class_files.TEMPLATE[1]))
    answered["identity_block"] = answered["identity_block"].replace("X = None", "X = Add()([X, X_shortcut])", 1)
    assert list(similarity.version(answered, template)) == ["identity_block"]
