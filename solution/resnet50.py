"""ResNet-50 for the SIGNS images, built from the two residual blocks."""

import keras
from keras import layers

from solution.blocks import convolutional_block, identity_block

# (stage, filters, stride of its convolutional block, letters of its identity blocks)
STAGES = (
    (2, (64, 64, 256), 1, "bc"),
    (3, (128, 128, 512), 2, "bcd"),
    (4, (256, 256, 1024), 2, "bcdef"),
    (5, (512, 512, 2048), 2, "bc"),
)


def ResNet50(input_shape=(64, 64, 3), classes=6):
    """The assignment's ResNet-50.

    CONV2D -> BATCHNORM -> RELU -> MAXPOOL -> CONVBLOCK -> IDBLOCK*2 -> CONVBLOCK -> IDBLOCK*3
    -> CONVBLOCK -> IDBLOCK*5 -> CONVBLOCK -> IDBLOCK*2 -> AVGPOOL -> FLATTEN -> DENSE

    Args:
        input_shape: shape of one image. Default (64, 64, 3).
        classes: number of classes of the softmax output. Default 6.

    Returns:
        A keras.Model named 'ResNet50'.
    """
    X_input = keras.Input(input_shape)
    X = layers.ZeroPadding2D((3, 3))(X_input)

    X = layers.Conv2D(64, (7, 7), strides=(2, 2), name="conv1")(X)
    X = layers.BatchNormalization(axis=3, name="bn_conv1")(X)
    X = layers.Activation("relu")(X)
    X = layers.MaxPooling2D((3, 3), strides=(2, 2))(X)

    for stage, filters, stride, identity_letters in STAGES:
        X = convolutional_block(X, f=3, filters=list(filters), stage=stage, block="a", s=stride)
        for letter in identity_letters:
            X = identity_block(X, 3, list(filters), stage=stage, block=letter)

    X = layers.AveragePooling2D((2, 2), name="avg_pool")(X)
    X = layers.Flatten()(X)
    X = layers.Dense(classes, activation="softmax", name="fc" + str(classes))(X)
    return keras.Model(inputs=X_input, outputs=X, name="ResNet50")
