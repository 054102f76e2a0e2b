"""A small class's results folder, as a batch would leave it, without starting kernels.

Each submission is a real notebook; its result is judged in-process by the grader's own
judge (measured by the probe in this process, as tests/test_corpus.py does, or taken from
the expected outputs for full marks) and written as the batch writes it: results.json in
Gradescope's schema and report.html. The class report is then built from that folder by
grader.class_files, which reads the graded code from the notebooks as a batch has it do.

The class: a broken file, a timeout, three full marks (one in another spelling), three with
the same common mistake, one with a rarer mistake, and two identical uncommon answers
spelled differently.
"""

import corpus
import notebooks
from grader import html_report, report
from grader.grade import grade_notebook
from grader.judge import judge
from grader.measurement import FunctionMeasurement
from test_corpus import measure_variant

# Mistakes that each cost a function several aspects, as students make them: stage 5's identity blocks
# given filters [256, 256, 2048]; ResNet50 left unfinished at its end (`X = None`, the stub's placeholder);
# convolutional_block's shortcut and Add left as the stub had them, so that it returns None.
STAGE5_FILTERS = corpus.Variant(
    "resnet-stage5-identity-filters", "ResNet50",
    (("X = identity_block(X, 3, list(filters), stage=stage, block=letter)",
      "X = identity_block(X, 3, [256, 256, 2048] if stage == 5 else list(filters), stage=stage, block=letter)"),),
    ("shapes", "params", "activations"))
RESNET_UNFINISHED = corpus.Variant(
    "resnet-unfinished", "ResNet50",
    ((f'X = {corpus.AVG_POOL}(X)\n    X = layers.Flatten()(X)\n'
      '    X = layers.Dense(classes, activation="softmax", name="fc" + str(classes))(X)', "X = None"),),
    ("names", "shapes", "params", "activations"))
CONV_RETURNS_NONE = corpus.Variant(
    "conv-unfinished-returns-none", "convolutional_block",
    ((corpus.SHORTCUT_CONV, "X_shortcut = None"), (corpus.SHORTCUT_BN + "\n", ""),
     ('X = layers.Add()([X, X_shortcut])\n    return layers.Activation("relu")(X)', "X = None\n    return X")),
    ("names", "shapes", "params", "activations"))
MULTI_ASPECT = (STAGE5_FILTERS, RESNET_UNFINISHED, CONV_RETURNS_NONE)

VARIANT = {v.id: v for v in corpus.MISTAKES + corpus.EQUIVALENTS + MULTI_ASPECT}
# The message grader.kernel gives a measurement that runs out of time.
TIMEOUT = "measuring identity_block took longer than its limit of 120 s"


def restyled(source):
    """The same code as another student might type it: comments, quotes, keywords, blank lines."""
    out = source.replace('"', "'").replace("layers.Conv2D(F1, (1, 1), strides=(1, 1)",
                                           "layers.Conv2D(filters=F1, kernel_size=(1, 1), strides=(1, 1)")
    out = out.replace("X_shortcut = X\n", "X_shortcut = X  # keep the input for the shortcut\n\n\n")
    return out.replace('"""', "'''").replace("F1, F2, F3 = filters", "# unpack\n    F1, F2, F3 = filters")


def twin_source():
    """An uncommon but correct identity_block: the Add as `+` and keras.ops.relu."""
    return VARIANT["plus-operator-and-ops-relu"].source()


_MEASURED = {}


def _measured(variant_id, expected):
    """One variant's measurement, made once per test session (each takes a few seconds)."""
    if variant_id not in _MEASURED:
        _MEASURED[variant_id] = measure_variant(VARIANT[variant_id], expected)
    return _MEASURED[variant_id]


def _class(expected):
    """(name, notebook or raw bytes, {function: measurement} or None) for each student."""
    full = dict(expected)
    relu = {**full, "identity_block": _measured("identity-missing-final-relu", expected)}
    twin = {**full, "identity_block": _measured("plus-operator-and-ops-relu", expected)}
    letter = {**full, "convolutional_block": _measured("conv-letter-l-shortcut", expected)}
    slow = {**full, "identity_block": FunctionMeasurement("identity_block", missing=TIMEOUT, limit="timeout")}
    sources = notebooks.solution_sources()
    relu_src = VARIANT["identity-missing-final-relu"].source()
    return [
        ("broken", b"\x89PNG this is a picture, not a notebook", None),
        ("slow", notebooks.solved(identity_block="def identity_block(X, f, filters, stage, block):\n"
                                                 "    while True:\n        pass\n"), slow),
        ("full_anna", notebooks.solved(), full),
        ("full_ben", notebooks.solved(), full),
        ("full_cleo", notebooks.solved(**{f: restyled(src) for f, src in sources.items()}), full),
        ("relu_dan", notebooks.solved(identity_block=relu_src), relu),
        ("relu_eve", notebooks.solved(identity_block=relu_src), relu),
        ("relu_fay", notebooks.solved(identity_block=restyled(relu_src)), relu),
        ("letter_gus", notebooks.solved(convolutional_block=VARIANT["conv-letter-l-shortcut"].source()), letter),
        ("twin_hal", notebooks.solved(identity_block=twin_source()), twin),
        ("twin_ivy", notebooks.solved(identity_block=restyled(twin_source())), twin),
    ]


def multi_aspect_class(expected):
    """A full-marks student and two students per MULTI_ASPECT mistake but the last (one), as _class gives them."""
    full = ("full_amy", notebooks.solved(), dict(expected))
    names = {STAGE5_FILTERS: ("s5_bob", "s5_cat"), RESNET_UNFINISHED: ("none_dan", "none_eve"),
             CONV_RETURNS_NONE: ("stub_fay",)}
    return [full] + [(name, notebooks.solved(**{v.function: v.source()}),
                      {**expected, v.function: _measured(v.id, expected)})
                     for v in MULTI_ASPECT for name in names[v]]


def write_results(tmp_path, expected):
    """Write the class's notebooks and results folder; return (results folder, {folder: (notebook, key)})."""
    return write_class(tmp_path, expected, _class(expected))


def write_class(tmp_path, expected, students, key="key-of-{}"):
    """Write each (name, notebook or raw bytes, {function: measurement} or None) as a batch would, judged
    against `expected`; return (results folder, {folder: (notebook, key)}). Written again into the same
    folder, it is a regrade: `key` (formatted with the name) stands for the batch manifest's key."""
    subs, out = tmp_path / "submissions", tmp_path / "results"
    subs.mkdir(parents=True, exist_ok=True)
    sources = {}
    for name, nb, measured in students:
        path = subs / f"{name}.ipynb"
        if isinstance(nb, bytes):
            path.write_bytes(nb)
            result = grade_notebook(path, expected)  # fails at reading, before any kernel
            assert result.error
        else:
            notebooks.write(nb, path)
            result = judge(path.name, expected, measured)
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(report.results_json(report.gradescope(result)))
        (folder / "report.html").write_text(html_report.render(result))
        sources[folder] = (path, key.format(name))
    return out, sources
