"""ResNet-50's two residual blocks, as the assignment specifies them.

This file is self-contained on purpose: the grader hands its source to the
grading kernel so that ResNet50 is graded on correct blocks.
"""

from keras import layers


def _names(stage, block):
    """Layer-name prefixes the assignment prescribes, e.g. ('res2a_branch', 'bn2a_branch')."""
    return f"res{stage}{block}_branch", f"bn{stage}{block}_branch"


def identity_block(X, f, filters, stage, block):
    """Residual block whose shortcut is the input itself.

    Args:
        X: input tensor of shape (batch, height, width, channels); channels must equal F3.
        f: kernel size of the middle convolution of the main path.
        filters: the three filter counts [F1, F2, F3] of the main path.
        stage: stage number, used in layer names (e.g. 2).
        block: block letter, used in layer names (e.g. 'b').

    Returns:
        The block's output tensor, of the same shape as X.
    """
    conv_name, bn_name = _names(stage, block)
    F1, F2, F3 = filters
    X_shortcut = X

    X = layers.Conv2D(F1, (1, 1), strides=(1, 1), padding="valid", name=conv_name + "2a")(X)
    X = layers.BatchNormalization(axis=3, name=bn_name + "2a")(X)
    X = layers.Activation("relu")(X)

    X = layers.Conv2D(F2, (f, f), strides=(1, 1), padding="same", name=conv_name + "2b")(X)
    X = layers.BatchNormalization(axis=3, name=bn_name + "2b")(X)
    X = layers.Activation("relu")(X)

    X = layers.Conv2D(F3, (1, 1), strides=(1, 1), padding="valid", name=conv_name + "2c")(X)
    X = layers.BatchNormalization(axis=3, name=bn_name + "2c")(X)

    X = layers.Add()([X, X_shortcut])
    return layers.Activation("relu")(X)


def convolutional_block(X, f, filters, stage, block, s=2):
    """Residual block whose shortcut is a strided 1x1 convolution, to change shape.

    Args:
        X: input tensor of shape (batch, height, width, channels).
        f: kernel size of the middle convolution of the main path.
        filters: the three filter counts [F1, F2, F3] of the main path.
        stage: stage number, used in layer names (e.g. 3).
        block: block letter, used in layer names (e.g. 'a').
        s: stride of the first main-path convolution and of the shortcut. Default 2.

    Returns:
        The block's output tensor, of shape (batch, ceil(height/s), ceil(width/s), F3).
    """
    conv_name, bn_name = _names(stage, block)
    F1, F2, F3 = filters
    X_shortcut = X

    X = layers.Conv2D(F1, (1, 1), strides=(s, s), padding="valid", name=conv_name + "2a")(X)
    X = layers.BatchNormalization(axis=3, name=bn_name + "2a")(X)
    X = layers.Activation("relu")(X)

    X = layers.Conv2D(F2, (f, f), strides=(1, 1), padding="same", name=conv_name + "2b")(X)
    X = layers.BatchNormalization(axis=3, name=bn_name + "2b")(X)
    X = layers.Activation("relu")(X)

    X = layers.Conv2D(F3, (1, 1), strides=(1, 1), padding="valid", name=conv_name + "2c")(X)
    X = layers.BatchNormalization(axis=3, name=bn_name + "2c")(X)

    X_shortcut = layers.Conv2D(F3, (1, 1), strides=(s, s), padding="valid", name=conv_name + "1")(X_shortcut)
    X_shortcut = layers.BatchNormalization(axis=3, name=bn_name + "1")(X_shortcut)

    X = layers.Add()([X, X_shortcut])
    return layers.Activation("relu")(X)
