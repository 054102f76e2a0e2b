"""The newer notebooks' corpus: correct variants that keep full marks, and the mistakes students make.

The base sources are written as students of the 2021 and current notebooks write them (the
course's imports, unprefixed layers, `kernel_initializer=initializer(seed=0)`, no names), and each
variant edits them, as tests/corpus.py does for the original notebook.
"""

from dataclasses import dataclass

IMPORTS = """from tensorflow.keras.layers import Input, Add, Dense, Activation, ZeroPadding2D, BatchNormalization, Flatten, Conv2D, AveragePooling2D, MaxPooling2D
from tensorflow.keras.models import Model
from tensorflow.keras.initializers import random_uniform, glorot_uniform
"""

IDENTITY_2021 = IMPORTS + """
def identity_block(X, f, filters, training=True, initializer=random_uniform):
    F1, F2, F3 = filters
    X_shortcut = X
    X = Conv2D(filters = F1, kernel_size = 1, strides = (1,1), padding = 'valid', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training = training) # Default axis
    X = Activation('relu')(X)
    X = Conv2D(filters = F2, kernel_size = f, strides = (1,1), padding = 'same', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training = training)
    X = Activation('relu')(X)
    X = Conv2D(filters = F3, kernel_size = 1, strides = (1,1), padding = 'valid', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training = training)
    X = Add()([X, X_shortcut])
    X = Activation('relu')(X)
    return X
"""

CONV_2021 = IMPORTS + """
def convolutional_block(X, f, filters, s = 2, training=True, initializer=glorot_uniform):
    F1, F2, F3 = filters
    X_shortcut = X
    X = Conv2D(filters = F1, kernel_size = 1, strides = (s, s), padding='valid', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training=training)
    X = Activation('relu')(X)
    X = Conv2D(filters = F2, kernel_size = f, strides = (1, 1), padding='same', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training=training)
    X = Activation('relu')(X)
    X = Conv2D(filters = F3, kernel_size = 1, strides = (1, 1), padding='valid', kernel_initializer = initializer(seed=0))(X)
    X = BatchNormalization(axis = 3)(X, training=training)
    X_shortcut = Conv2D(filters = F3, kernel_size = 1, strides = (s, s), padding='valid', kernel_initializer = initializer(seed=0))(X_shortcut)
    X_shortcut = BatchNormalization(axis = 3)(X_shortcut, training=training)
    X = Add()([X, X_shortcut])
    X = Activation('relu')(X)
    return X
"""

RESNET_2021 = IMPORTS + """
def ResNet50(input_shape = (64, 64, 3), classes = 6):
    X_input = Input(input_shape)
    X = ZeroPadding2D((3, 3))(X_input)
    X = Conv2D(64, (7, 7), strides = (2, 2), kernel_initializer = glorot_uniform(seed=0))(X)
    X = BatchNormalization(axis = 3)(X)
    X = Activation('relu')(X)
    X = MaxPooling2D((3, 3), strides=(2, 2))(X)
    X = convolutional_block(X, f = 3, filters = [64, 64, 256], s = 1)
    X = identity_block(X, 3, [64, 64, 256])
    X = identity_block(X, 3, [64, 64, 256])
    X = convolutional_block(X, f = 3, filters = [128, 128, 512], s = 2)
    X = identity_block(X, 3, [128, 128, 512])
    X = identity_block(X, 3, [128, 128, 512])
    X = identity_block(X, 3, [128, 128, 512])
    X = convolutional_block(X, f = 3, filters = [256, 256, 1024], s = 2)
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])
    X = identity_block(X, 3, [256, 256, 1024])
    X = convolutional_block(X, f = 3, filters = [512, 512, 2048], s = 2)
    X = identity_block(X, 3, [512, 512, 2048])
    X = identity_block(X, 3, [512, 512, 2048])
    X = AveragePooling2D()(X)
    X = Flatten()(X)
    X = Dense(classes, activation='softmax', kernel_initializer = glorot_uniform(seed=0))(X)
    model = Model(inputs = X_input, outputs = X)
    return model
"""


def _current(source):
    """The current notebook's spelling of a 2021 source: no `training` in the blocks, one in ResNet50."""
    for old, new in ((", training=True, initializer", ", initializer"), ("(X, training = training)", "(X)"),
                     ("(X, training=training)", "(X)"), ("(X_shortcut, training=training)", "(X_shortcut)"),
                     ("classes = 6):", "classes = 6, training=False):")):
        source = source.replace(old, new)
    return source


BASE = {
    "2021": {"identity_block": IDENTITY_2021, "convolutional_block": CONV_2021, "ResNet50": RESNET_2021},
    "current": {"identity_block": _current(IDENTITY_2021), "convolutional_block": _current(CONV_2021),
                "ResNet50": _current(RESNET_2021)},
}


@dataclass(frozen=True)
class Variant:
    id: str
    version: str
    function: str
    edits: tuple  # (old, new[, count]) replacements applied to the version's base source
    loses: tuple = ()  # aspects that must lose points; empty for a correct variant
    names: str = ""  # text the feedback must contain
    hint: str = ""  # the one hint that must name it

    def source(self):
        src = BASE[self.version][self.function]
        for edit in self.edits:
            old, new = edit[0], edit[1]
            count = edit[2] if len(edit) > 2 else -1
            assert old in src, f"{self.id}: {old!r} not in the {self.version} {self.function}"
            src = src.replace(old, new, count)
        return src


NO_INIT = (", kernel_initializer = initializer(seed=0)", "")
ADD_SWAPPED = ("Add()([X, X_shortcut])", "Add()([X_shortcut, X])")
SHORTCUT_FIRST = ("""    X_shortcut = X
    X = Conv2D(filters = F1""", """    X_shortcut = Conv2D(filters = F3, kernel_size = 1, strides = (s, s), padding='valid')(X)
    X_shortcut = BatchNormalization(axis = 3)(X_shortcut, training=training)
    X = Conv2D(filters = F1""")
SHORTCUT_LATE = ("""    X_shortcut = Conv2D(filters = F3, kernel_size = 1, strides = (s, s), padding='valid', kernel_initializer = initializer(seed=0))(X_shortcut)
    X_shortcut = BatchNormalization(axis = 3)(X_shortcut, training=training)
""", "")
LOOP = ("""    X = convolutional_block(X, f = 3, filters = [64, 64, 256], s = 1)""", """    for filters, s, n in (([64, 64, 256], 1, 2), ([128, 128, 512], 2, 3), ([256, 256, 1024], 2, 5), ([512, 512, 2048], 2, 2)):
        X = convolutional_block(X, 3, filters, s)
        for _ in range(n):
            X = identity_block(X, 3, filters)
    return Model(X_input, Dense(classes, activation='softmax')(Flatten()(AveragePooling2D((2, 2))(X))))
    X = convolutional_block(X, f = 3, filters = [64, 64, 256], s = 1)""")


def _both(id, function, edits, loses=(), names="", hint="", only=()):
    return tuple(Variant(f"{v}-{id}", v, function, edits, loses, names, hint) for v in (only or ("2021", "current")))


EQUIVALENTS = (
    *_both("identity-no-initializer", "identity_block", (NO_INIT,)),
    *_both("identity-add-swapped", "identity_block", (ADD_SWAPPED,)),
    Variant("current-identity-relu-layer-keras-imports", "current", "identity_block",
            (("Activation('relu')", "ReLU()"), ("from tensorflow.keras.models", "from keras.layers import ReLU\nfrom keras.models"),
             ("from tensorflow.keras.layers", "from keras.layers"))),
    Variant("2021-identity-training-positional", "2021", "identity_block", (("(X, training = training)", "(X, training)"),)),
    Variant("2021-conv-shortcut-first", "2021", "convolutional_block", (SHORTCUT_FIRST, SHORTCUT_LATE)),
    Variant("current-conv-add-swapped", "current", "convolutional_block", (ADD_SWAPPED,)),
    Variant("current-identity-bn-training-false", "current", "identity_block",
            (("BatchNormalization(axis = 3)(X)", "BatchNormalization(axis = 3)(X, training=False)"),)),
    *_both("resnet-loop", "ResNet50", (LOOP,)),
)

MISTAKES = (
    Variant("2021-identity-bn-ignores-training", "2021", "identity_block",
            (("(X, training = training)", "(X)"),), ("activations",), "main path BatchNormalization 1", "bn_mode"),
    Variant("2021-identity-bn-training-true", "2021", "identity_block",
            (("(X, training = training)", "(X, training = True)"),), ("activations",),
            "inference mode (called with training=False)", "bn_mode"),
    Variant("2021-conv-shortcut-bn-ignores-training", "2021", "convolutional_block",
            (("(X_shortcut, training=training)", "(X_shortcut)"),), ("activations",), "shortcut BatchNormalization",
            "bn_mode"),
    *_both("identity-missing-final-relu", "identity_block", (("X = Activation('relu')(X)\n    return X", "return X"),),
           ("activations",), "Add", "missing_final_relu"),
    *_both("identity-hardcoded-f", "identity_block", (("kernel_size = f", "kernel_size = 3"),),
           ("params", "activations"), "main path Conv2D 2", "hard_coded_f"),
    *_both("identity-filters-order", "identity_block", (("F1, F2, F3 = filters", "F2, F1, F3 = filters"),),
           ("shapes", "params", "activations"), "main path Conv2D 1", "filters_order"),
    *_both("conv-shortcut-stride-1", "convolutional_block",
           (("kernel_size = 1, strides = (s, s), padding='valid', kernel_initializer = initializer(seed=0))(X_shortcut)",
             "kernel_size = 1, strides = (1, 1), padding='valid', kernel_initializer = initializer(seed=0))(X_shortcut)"),),
           ("shapes", "activations"), "shortcut Conv2D", "shortcut_stride"),
    *_both("conv-middle-valid-padding", "convolutional_block", (("padding='same'", "padding='valid'"),),
           ("shapes", "activations"), "expected padding 'same', found 'valid'", "padding"),
    *_both("resnet-stage5-identity-filters", "ResNet50",
           (("identity_block(X, 3, [512, 512, 2048])", "identity_block(X, 3, [256, 256, 2048])"),),
           ("shapes", "params", "activations"), "stage 5 block 2: main path Conv2D 1"),
)
