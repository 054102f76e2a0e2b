"""The 2021 notebook's reference: blocks with `training` and `initializer` arguments, no layer names.

Self-contained on purpose (keras only): the grader hands this file's source to the grading
kernel so that ResNet50 is graded on correct blocks. The initializers are the notebook's
defaults; the grader replaces every weight, so they never matter.
"""

import keras
from keras import layers
from keras.initializers import glorot_uniform, random_uniform

# (filters, stride of the stage's convolutional block, number of identity blocks after it)
STAGES = (
    ((64, 64, 256), 1, 2),
    ((128, 128, 512), 2, 3),
    ((256, 256, 1024), 2, 5),
    ((512, 512, 2048), 2, 2),
)


def _main_path(X, f, filters, s, training, initializer):
    """CONV 1x1 (stride s) -> BN -> RELU -> CONV fxf -> BN -> RELU -> CONV 1x1 -> BN."""
    F1, F2, F3 = filters
    X = layers.Conv2D(F1, 1, strides=(s, s), padding="valid", kernel_initializer=initializer(seed=0))(X)
    X = layers.BatchNormalization(axis=3)(X, training=training)
    X = layers.Activation("relu")(X)
    X = layers.Conv2D(F2, f, strides=(1, 1), padding="same", kernel_initializer=initializer(seed=0))(X)
    X = layers.BatchNormalization(axis=3)(X, training=training)
    X = layers.Activation("relu")(X)
    X = layers.Conv2D(F3, 1, strides=(1, 1), padding="valid", kernel_initializer=initializer(seed=0))(X)
    return layers.BatchNormalization(axis=3)(X, training=training)


def identity_block(X, f, filters, training=True, initializer=random_uniform):
    """Residual block whose shortcut is the input itself.

    Args:
        X: input tensor of shape (batch, height, width, channels); channels must equal F3.
        f: kernel size of the middle convolution of the main path.
        filters: the three filter counts [F1, F2, F3] of the main path.
        training: True: BatchNormalization on the batch's statistics; False: on its moving ones.
        initializer: the kernels' initializer. Default random_uniform.

    Returns:
        The block's output tensor, of the same shape as X.
    """
    X_shortcut = X
    X = _main_path(X, f, filters, 1, training, initializer)
    X = layers.Add()([X, X_shortcut])
    return layers.Activation("relu")(X)


def convolutional_block(X, f, filters, s=2, training=True, initializer=glorot_uniform):
    """Residual block whose shortcut is a strided 1x1 convolution, to change shape.

    Args:
        X: input tensor of shape (batch, height, width, channels).
        f: kernel size of the middle convolution of the main path.
        filters: the three filter counts [F1, F2, F3] of the main path.
        s: stride of the first main-path convolution and of the shortcut. Default 2.
        training: True: BatchNormalization on the batch's statistics; False: on its moving ones.
        initializer: the kernels' initializer. Default glorot_uniform.

    Returns:
        The block's output tensor, of shape (batch, ceil(height/s), ceil(width/s), F3).
    """
    X_shortcut = X
    X = _main_path(X, f, filters, s, training, initializer)
    X_shortcut = layers.Conv2D(filters[2], 1, strides=(s, s), padding="valid",
                               kernel_initializer=initializer(seed=0))(X_shortcut)
    X_shortcut = layers.BatchNormalization(axis=3)(X_shortcut, training=training)
    X = layers.Add()([X, X_shortcut])
    return layers.Activation("relu")(X)


def ResNet50(input_shape=(64, 64, 3), classes=6):
    """The notebook's ResNet-50: its blocks are called with their default, training=True.

    CONV2D -> BATCHNORM -> RELU -> MAXPOOL -> CONVBLOCK -> IDBLOCK*2 -> CONVBLOCK -> IDBLOCK*3
    -> CONVBLOCK -> IDBLOCK*5 -> CONVBLOCK -> IDBLOCK*2 -> AVGPOOL -> FLATTEN -> DENSE

    Args:
        input_shape: shape of one image. Default (64, 64, 3).
        classes: number of classes of the softmax output. Default 6.

    Returns:
        A keras.Model.
    """
    X_input = keras.Input(input_shape)
    X = layers.ZeroPadding2D((3, 3))(X_input)
    X = layers.Conv2D(64, (7, 7), strides=(2, 2), kernel_initializer=glorot_uniform(seed=0))(X)
    X = layers.BatchNormalization(axis=3)(X)
    X = layers.Activation("relu")(X)
    X = layers.MaxPooling2D((3, 3), strides=(2, 2))(X)
    for filters, stride, identity_blocks in STAGES:
        X = convolutional_block(X, f=3, filters=list(filters), s=stride)
        for _ in range(identity_blocks):
            X = identity_block(X, 3, list(filters))
    X = layers.AveragePooling2D((2, 2))(X)
    X = layers.Flatten()(X)
    X = layers.Dense(classes, activation="softmax", kernel_initializer=glorot_uniform(seed=0))(X)
    return keras.Model(inputs=X_input, outputs=X)
