"""Mistakes students really make, and correct variants that must keep full marks.

Each entry rewrites the solution's own code, so the corpus follows the solution.
`loses` lists the aspects that must lose points; `names` is the layer (or text)
the feedback must mention.
"""

from dataclasses import dataclass

from notebooks import solution_sources


@dataclass(frozen=True)
class Variant:
    id: str
    function: str
    edits: tuple  # (old, new[, count]) replacements applied to the solution's source
    loses: tuple = ()  # aspects that must lose points; empty for a correct variant
    names: str = ""  # text the feedback must contain

    def source(self):
        src = solution_sources()[self.function]
        for edit in self.edits:
            old, new = edit[0], edit[1]
            count = edit[2] if len(edit) > 2 else -1
            assert old in src, f"{self.id}: {old!r} not in the solution's {self.function}"
            src = src.replace(old, new, count)
        return src


RELU_END = 'return layers.Activation("relu")(X)'
SHORTCUT_CONV = 'X_shortcut = layers.Conv2D(F3, (1, 1), strides=(s, s), padding="valid", name=conv_name + "1")(X_shortcut)'
SHORTCUT_BN = 'X_shortcut = layers.BatchNormalization(axis=3, name=bn_name + "1")(X_shortcut)'

AVG_POOL = 'layers.AveragePooling2D((2, 2), name="avg_pool")'
# The identity block's main path as the solution writes it: three convolutions, each with its BatchNormalization.
_IDENTITY = solution_sources()["identity_block"]
MAIN_PATH = _IDENTITY[_IDENTITY.index("    X = layers.Conv2D(F1"):_IDENTITY.index("\n    X = layers.Add()")]
# The imports of the course's Keras 2 notebook, whose layer names students then use unprefixed.
KERAS2_IMPORTS = ("from keras.layers import Input, Add, Dense, Activation, ZeroPadding2D, BatchNormalization, "
                  "Flatten, Conv2D, AveragePooling2D, MaxPooling2D\nfrom keras.models import Model\n"
                  "from keras.initializers import glorot_uniform")


MISTAKES = (
    Variant("identity-missing-final-relu", "identity_block", ((RELU_END, "return X"),),
            ("activations",), "Add"),
    Variant("identity-relu-before-add", "identity_block",
            (('X = layers.BatchNormalization(axis=3, name=bn_name + "2c")(X)\n',
              'X = layers.BatchNormalization(axis=3, name=bn_name + "2c")(X)\n    X = layers.Activation("relu")(X)\n'),
             (RELU_END, "return X")),
            ("activations",), "bn2b_branch2c"),
    Variant("identity-no-shortcut", "identity_block", (("layers.Add()([X, X_shortcut])", "X"),),
            ("activations",), "Add"),
    Variant("identity-hardcoded-f", "identity_block", (("(f, f)", "(3, 3)"),),
            ("params", "activations"), "res2b_branch2b"),
    Variant("identity-valid-padding", "identity_block", (('(f, f), strides=(1, 1), padding="same"', '(f, f), strides=(1, 1), padding="valid"'),),
            ("shapes", "activations"), "expected padding 'same', found 'valid'"),
    Variant("identity-filters-order", "identity_block", (("F1, F2, F3 = filters", "F2, F1, F3 = filters"),),
            ("shapes", "params", "activations"), "res2b_branch2a"),
    Variant("identity-bn-axis-1", "identity_block", (('BatchNormalization(axis=3, name=bn_name + "2a")', 'BatchNormalization(axis=1, name=bn_name + "2a")'),),
            ("params", "activations"), "expected axis (3,), found (1,)"),
    Variant("identity-hardcoded-names", "identity_block", (("conv_name, bn_name = _names(stage, block)", "conv_name, bn_name = _names(2, 'b')"),),
            ("names",), "res4e_branch2a"),
    Variant("identity-no-branch-suffix", "identity_block", (("conv_name, bn_name = _names(stage, block)",
                                                             "conv_name, bn_name = f'res{stage}{block}', f'bn{stage}{block}'"),),
            ("names",), "res2b_branch2a"),
    Variant("conv-letter-l-shortcut", "convolutional_block",
            (('name=conv_name + "1"', 'name=conv_name + "l"'), ('name=bn_name + "1"', 'name=bn_name + "l"')),
            ("names",), "the digit one"),
    Variant("conv-shortcut-stride-1", "convolutional_block",
            ((SHORTCUT_CONV, SHORTCUT_CONV.replace("strides=(s, s)", "strides=(1, 1)")),),
            ("shapes", "activations"), "res3a_branch1: expected output shape (None, 4, 4, 10), found (None, 7, 7, 10); expected strides (2, 2), found (1, 1)"),
    Variant("conv-hardcoded-s", "convolutional_block", (("strides=(s, s)", "strides=(2, 2)"),),
            ("shapes", "activations"), "res2a_branch2a"),
    Variant("conv-stride-on-middle-conv", "convolutional_block",
            (('(F1, (1, 1), strides=(s, s)', '(F1, (1, 1), strides=(1, 1)'),
             ('(F2, (f, f), strides=(1, 1)', '(F2, (f, f), strides=(s, s)')),
            ("shapes", "activations"), "res3a_branch2a"),
    Variant("conv-shortcut-f1-filters", "convolutional_block",
            ((SHORTCUT_CONV, SHORTCUT_CONV.replace("Conv2D(F3", "Conv2D(F1")),),
            ("shapes", "params", "activations"), "res3a_branch1"),
    Variant("conv-shortcut-no-bn", "convolutional_block", ((SHORTCUT_BN, ""),),
            ("names", "shapes", "params", "activations"), "bn3a_branch1"),
    Variant("conv-missing-final-relu", "convolutional_block", ((RELU_END, "return X"),),
            ("activations",), "Add"),
    Variant("conv-shortcut-relu-before-add", "convolutional_block",
            ((SHORTCUT_BN, SHORTCUT_BN + "\n    X_shortcut = layers.Activation(\"relu\")(X_shortcut)"),),
            ("activations",), "bn3a_branch1"),
    Variant("conv-default-s-1", "convolutional_block", (("block, s=2):", "block, s=1):"),),
            ("shapes", "activations"), "res5b_branch2a"),
    Variant("resnet-hardcoded-classes", "ResNet50", (('layers.Dense(classes, activation="softmax", name="fc" + str(classes))', 'layers.Dense(6, activation="softmax", name="fc6")'),),
            ("names", "shapes", "params", "activations"), "fc3"),
    Variant("resnet-missing-stage-block", "ResNet50", (("(4, (256, 256, 1024), 2, 'bcdef')", "(4, (256, 256, 1024), 2, 'bcde')"),),
            ("names", "shapes", "params", "activations"), "res4f_branch2a"),
    Variant("resnet-stage2-stride-2", "ResNet50", (("(2, (64, 64, 256), 1, 'bc')", "(2, (64, 64, 256), 2, 'bc')"),),
            ("names", "shapes", "params", "activations"), "res2a_branch2a: expected output shape (None, 15, 15, 64), found (None, 8, 8, 64); expected strides (1, 1), found (2, 2)"),
    Variant("resnet-no-maxpool", "ResNet50", (("X = layers.MaxPooling2D((3, 3), strides=(2, 2))(X)\n", ""),),
            ("shapes", "params", "activations"), "res2a_branch2a: expected output shape (None, 15, 15, 64), found (None, 32, 32, 64)"),
    Variant("resnet-avgpool-misnamed", "ResNet50", (('name="avg_pool"', 'name="avgpool"'),),
            ("names",), "avg_pool"),
    Variant("resnet-no-softmax", "ResNet50", (('activation="softmax", name="fc"', 'name="fc"'),),
            ("activations",), "fc3"),
    Variant("resnet-max-instead-of-avg-pool", "ResNet50", (('layers.AveragePooling2D((2, 2), name="avg_pool")', 'layers.MaxPooling2D((2, 2), name="avg_pool")'),),
            ("names", "activations"), "avg_pool"),
    Variant("resnet-bn-conv1-axis-1", "ResNet50", (('BatchNormalization(axis=3, name="bn_conv1")', 'BatchNormalization(axis=1, name="bn_conv1")'),),
            ("params", "activations"), "bn_conv1"),
    # Naming slips cost `names` only: layers pair by their place in the data flow, not by name.
    Variant("identity-bn-names-swapped", "identity_block",
            (('name=bn_name + "2a"', 'name=bn_name + "TMP"'), ('name=bn_name + "2b"', 'name=bn_name + "2a"'),
             ('name=bn_name + "TMP"', 'name=bn_name + "2b"')),
            ("names",), "bn2b_branch2a: expected the BatchNormalization layer here to be named 'bn2b_branch2a', "
                        "found 'bn2b_branch2b'"),
    Variant("identity-unnamed-layers", "identity_block",
            ((', name=conv_name + "2a"', ""), (', name=conv_name + "2b"', ""), (', name=conv_name + "2c"', ""),
             (', name=bn_name + "2a"', ""), (', name=bn_name + "2b"', ""), (', name=bn_name + "2c"', "")),
            ("names",), "res2b_branch2a: expected the Conv2D layer here to be named 'res2b_branch2a'"),
    Variant("conv-names-swapped-shortcut", "convolutional_block",
            (('name=conv_name + "2a"', 'name=conv_name + "TMP"'), ('name=conv_name + "1"', 'name=conv_name + "2a"'),
             ('name=conv_name + "TMP"', 'name=conv_name + "1"')),
            ("names",), "res3a_branch1: expected the Conv2D layer here to be named 'res3a_branch1', found 'res3a_branch2a'"),
    Variant("resnet-block-2a", "ResNet50", (('stage=stage, block="a"', 'stage=stage, block=str(stage) + "a"'),),
            ("names",), "res2a_branch2a: expected the Conv2D layer here to be named 'res2a_branch2a', found 'res22a_branch2a'"),
    Variant("resnet-identity-letters-skip", "ResNet50",
            (("(5, (512, 512, 2048), 2, 'bc')", "(5, (512, 512, 2048), 2, 'cd')"),),
            ("names",), "res5b_branch2a: expected the Conv2D layer here to be named 'res5b_branch2a', found 'res5c_branch2a'"),
    Variant("resnet-avgpool-same-unnamed", "ResNet50", ((AVG_POOL, "layers.AveragePooling2D(pool_size=(2, 2), padding='same')"),),
            ("names",), "avg_pool: expected the AveragePooling2D layer here to be named 'avg_pool', found 'average_pooling2d'"),
    # Keras 2 spellings that Keras 3 rejects: the build fails, and the hint says what Keras 3 wants.
    Variant("keras2-avgpool-without-pool-size", "ResNet50",
            (('layers.AveragePooling2D((2, 2), name="avg_pool")', 'layers.AveragePooling2D(name="avg_pool")'),),
            ("names", "shapes", "params", "activations"), "missing 1 required positional argument: 'pool_size'"),
    Variant("keras2-model-input-output", "ResNet50",
            (("keras.Model(inputs=X_input, outputs=X", "keras.Model(input=X_input, output=X"),),
            ("shapes", "activations"), "now called 'inputs'"),  # every layer was built right: names, params hold
    Variant("keras2-border-mode", "identity_block",
            (('(f, f), strides=(1, 1), padding="same"', '(f, f), strides=(1, 1), border_mode="same"'),),
            ("names", "shapes", "params", "activations"), "now called 'padding'"),
    Variant("keras2-merge", "identity_block",
            (("layers.Add()([X, X_shortcut])", "merge([X, X_shortcut], mode='sum')"),
             ("from keras import layers", "from keras import layers\ntry:\n    from keras.layers import merge\nexcept ImportError:\n    pass")),
            ("shapes", "activations"), "no merge function"),
)

EQUIVALENTS = (
    Variant("add-order-swapped", "identity_block", (("layers.Add()([X, X_shortcut])", "layers.Add()([X_shortcut, X])"),)),
    Variant("relu-layer", "identity_block", (('layers.Activation("relu")', "layers.ReLU()"),)),
    Variant("bn-axis-minus-1", "identity_block", (("axis=3", "axis=-1"),)),
    Variant("int-kernels-and-strides", "identity_block", (("(1, 1)", "1"), ("(f, f)", "f"))),
    Variant("plus-operator-and-ops-relu", "identity_block",
            (("X = layers.Add()([X, X_shortcut])\n    return layers.Activation(\"relu\")(X)",
              "import keras\n    return keras.ops.relu(X + X_shortcut)"),)),
    Variant("glorot-initializer", "convolutional_block",
            (('padding="valid", name=', 'padding="valid", kernel_initializer=keras.initializers.glorot_uniform(seed=0), name='),
             ("from keras import layers", "import keras\nfrom keras import layers"))),
    Variant("shortcut-first", "convolutional_block",
            (("    X_shortcut = X\n", "    X_shortcut = X\n    " + SHORTCUT_CONV + "\n    " + SHORTCUT_BN + "\n", 1),
             ("    " + SHORTCUT_CONV + "\n    " + SHORTCUT_BN + "\n\n    X = layers.Add()", "\n    X = layers.Add()"))),
    Variant("int-strides-conv", "convolutional_block", (("strides=(s, s)", "strides=s"), ("(1, 1)", "1"))),
    Variant("pasted-stage-calls", "ResNet50", (
        ("""    for stage, filters, stride, identity_letters in STAGES:
        X = convolutional_block(X, f=3, filters=list(filters), stage=stage, block="a", s=stride)
        for letter in identity_letters:
            X = identity_block(X, 3, list(filters), stage=stage, block=letter)
""", "".join(
            f"    X = convolutional_block(X, f=3, filters={list(fl)}, stage={st}, block='a', s={sd})\n"
            + "".join(f"    X = identity_block(X, 3, {list(fl)}, stage={st}, block='{b}')\n" for b in bs)
            for st, fl, sd, bs in ((2, (64, 64, 256), 1, "bc"), (3, (128, 128, 512), 2, "bcd"),
                                   (4, (256, 256, 1024), 2, "bcdef"), (5, (512, 512, 2048), 2, "bc")))),)),
    Variant("relu-layers-in-resnet", "ResNet50", (('layers.Activation("relu")', "layers.ReLU()"), ("axis=3", "axis=-1"))),
    # Settings that change nothing: 'same' on a 1x1 convolution, at stride 1 and at stride s.
    Variant("same-padding-1x1-identity", "identity_block",
            (('(1, 1), strides=(1, 1), padding="valid"', '(1, 1), strides=(1, 1), padding="same"'),)),
    Variant("same-padding-1x1-conv-stride-s", "convolutional_block", (('padding="valid"', 'padding="same"'),)),
    Variant("avgpool-same-padding", "ResNet50",
            ((AVG_POOL, "layers.AveragePooling2D(pool_size=(2, 2), padding='same', name='avg_pool')"),)),
    Variant("avgpool-strides-2", "ResNet50", ((AVG_POOL, "layers.AveragePooling2D((2, 2), strides=2, name='avg_pool')"),)),
    Variant("layers-add-function", "identity_block",
            (("layers.Add()([X, X_shortcut])", "keras.layers.add([X, X_shortcut])"),
             ("from keras import layers", "import keras\nfrom keras import layers"))),
    Variant("ops-add", "convolutional_block",
            (("layers.Add()([X, X_shortcut])", "keras.ops.add(X, X_shortcut)"),
             ("from keras import layers", "import keras\nfrom keras import layers"))),
    Variant("defaults-written-out-blocks", "convolutional_block",
            (("BatchNormalization(axis=3,", "BatchNormalization(axis=3, momentum=0.99, epsilon=0.001, center=True, scale=True,"),
             ("Conv2D(F2, (f, f), strides=(1, 1)", "Conv2D(F2, (f, f), strides=(1, 1), dilation_rate=(1, 1), use_bias=True"))),
    Variant("defaults-written-out-resnet", "ResNet50",
            (("BatchNormalization(axis=3,", "BatchNormalization(axis=3, momentum=0.99, epsilon=0.001,"),
             ("layers.MaxPooling2D((3, 3), strides=(2, 2))", "layers.MaxPooling2D(pool_size=(3, 3), strides=(2, 2), padding='valid')"),
             (AVG_POOL, "layers.AveragePooling2D(pool_size=(2, 2), strides=None, padding='valid', name='avg_pool')"),
             ("layers.ZeroPadding2D((3, 3))", "layers.ZeroPadding2D(padding=(3, 3))"))),
    Variant("keras2-imports-keywords-no-padding", "identity_block",
            (("from keras import layers", KERAS2_IMPORTS),
             ('layers.Conv2D(F1, (1, 1), strides=(1, 1), padding="valid",',
              "Conv2D(filters=F1, kernel_size=1, strides=1, kernel_initializer=glorot_uniform(seed=0),"),
             ('layers.Conv2D(F3, (1, 1), strides=(1, 1), padding="valid",', "Conv2D(F3, kernel_size=(1, 1),"),
             ("layers.", ""))),
    Variant("helper-function-and-loop", "identity_block", (
        (MAIN_PATH, '    for part, n, size in (("2a", F1, 1), ("2b", F2, f), ("2c", F3, 1)):\n'
                    '        X = conv_bn(X, n, size, conv_name + part, bn_name + part, relu=part != "2c")\n'),
        ("def identity_block(", 'def conv_bn(X, filters, size, conv, bn, relu=True):\n'
                                '    X = layers.Conv2D(filters, size, padding="same", name=conv)(X)\n'
                                '    X = layers.BatchNormalization(axis=-1, name=bn)(X)\n'
                                '    return layers.Activation("relu")(X) if relu else X\n\n\n'
                                'def identity_block('))),
    Variant("keras2-imports-resnet", "ResNet50",
            (("from keras import layers", KERAS2_IMPORTS), ("keras.Input(input_shape)", "Input(input_shape)"),
             ("keras.Model(", "Model("), ("layers.", ""))),
)

# Sources graded only through a kernel (tests/test_grade_e2e.py): the mistake is in a failed import,
# which only a kernel's run of the definitions shows.
MISTAKE_SOURCES = {
    "identity-keras2-module": "from keras.layers.normalization import BatchNormalization\n"
                              + Variant("", "identity_block", (("layers.BatchNormalization", "BatchNormalization"),)).source(),
}

# The hint (grader.diagnosis) each mistake must produce, by the hint's id; a correct variant produces none.
# The letter 'l' for '1' is named inside the names message itself ("the digit one", above).
HINTS = {
    "identity-missing-final-relu": "missing_final_relu",
    "identity-relu-before-add": "relu_before_add",
    "identity-no-shortcut": "missing_shortcut",
    "identity-hardcoded-f": "hard_coded_f",
    "identity-valid-padding": "padding",
    "identity-filters-order": "filters_order",
    "identity-bn-axis-1": "bn_axis",
    "identity-hardcoded-names": "hard_coded_names",
    "conv-shortcut-stride-1": "shortcut_stride",
    "conv-missing-final-relu": "missing_final_relu",
    "conv-shortcut-relu-before-add": "relu_before_add",
    "conv-hardcoded-s": "hard_coded_s",
    "conv-stride-on-middle-conv": "stride_on_middle_conv",
    "conv-default-s-1": "default_s",
    "resnet-hardcoded-classes": "hard_coded_classes",
    "resnet-missing-stage-block": "missing_block",
    "resnet-bn-conv1-axis-1": "bn_axis",
    "keras2-avgpool-without-pool-size": "keras2_pool_size",
    "keras2-model-input-output": "keras2_keyword",
    "keras2-border-mode": "keras2_keyword",
    "keras2-merge": "keras2_merge",
    "identity-unnamed-layers": "unnamed_layers",
    "resnet-avgpool-same-unnamed": "unnamed_pool",
    "resnet-identity-letters-skip": "block_letters",
    "resnet-block-2a": "stage_in_block",
}


def measure(variant, expected_outputs):
    """The variant measured in-process by the grader's own probe, as a kernel would measure it (validated)."""
    import solution
    from grader import probe
    from grader.matching import reference_tables
    from grader.measurement import from_wire
    from grader.spec import CASES

    namespace = {}
    exec(compile(variant.source(), variant.id, "exec"), namespace)
    blocks = ({"identity_block": solution.identity_block, "convolutional_block": solution.convolutional_block}
              if variant.function == "ResNet50" else None)  # ResNet50 is graded on correct blocks
    measured = probe.measure_function(variant.function, namespace[variant.function], list(CASES[variant.function]),
                                      blocks, reference_tables(expected_outputs[variant.function]))
    return from_wire(probe.encode(measured), variant.function)
