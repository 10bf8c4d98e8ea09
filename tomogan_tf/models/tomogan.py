"""TomoGAN generator and discriminator (Liu et al., JOSA A 37(3):422, 2020).

The generator is a 3-level U-Net without normalisation layers: ``depth`` adjacent
slices come in as channels and the centre slice comes out. The discriminator is
unconditional (it sees a clean or a generated image, never the noisy input).
"""

from __future__ import annotations

import keras
from keras import layers

from tomogan_tf.models.layers import BilinearUpsample2x, CentreSlice


def _conv(filters: int, kernel: int, name: str, strides: int = 1, activation="relu"):
    return layers.Conv2D(
        filters, kernel, strides=strides, padding="same", activation=activation, name=name
    )


def tomogan_generator(depth: int = 1, residual: bool = False, name: str = "tomogan_generator"):
    """Build the TomoGAN U-Net generator.

    Args:
        depth: number of adjacent slices stacked as input channels (odd; the
            centre one is the slice being denoised).
        residual: when True the network predicts the noise and subtracts it from
            the centre input slice. False is the paper's direct output.
        name: model name.

    Returns:
        A functional `keras.Model` mapping (batch, H, W, depth) to (batch, H, W, 1);
        H and W must be multiples of 8.

    Example:
    >>> g = tomogan_generator(depth=3)
    >>> g.count_params()
    694913
    """
    if depth < 1 or depth % 2 == 0:
        raise ValueError(f"depth must be a positive odd number, got {depth}")
    inputs = keras.Input(shape=(None, None, depth), name="noisy")
    x = _conv(8, 1, "stem")(inputs)
    skips = []
    for level, filters in enumerate((32, 64, 128), start=1):
        x = _conv(filters, 3, f"down{level}_conv1")(x)
        x = _conv(filters, 3, f"down{level}_conv2")(x)
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"down{level}_pool")(x)
    x = _conv(128, 3, "bottleneck")(x)
    for level, (filters, skip) in enumerate(
        zip((64, 32, 32), reversed(skips), strict=True), start=1
    ):
        x = BilinearUpsample2x(name=f"up{level}_upsample")(x)
        x = layers.Concatenate(name=f"up{level}_concat")([skip, x])
        x = _conv(filters, 3, f"up{level}_conv1")(x)
        x = _conv(filters, 3, f"up{level}_conv2")(x)
    x = _conv(16, 1, "head_conv")(x)
    outputs = _conv(1, 1, "head_out", activation=None)(x)
    if residual:
        centre = CentreSlice(name="centre_slice")(inputs)
        outputs = layers.Subtract(name="residual")([centre, outputs])
    outputs = layers.Activation("linear", dtype="float32", name="denoised")(outputs)
    return keras.Model(inputs, outputs, name=name)


def tomogan_discriminator(patch_size: int = 256, name: str = "tomogan_discriminator"):
    """Build the TomoGAN discriminator (critic): six strided convs, two dense layers.

    Its input size is fixed to the training patch size because of the dense head.
    The output is an unbounded logit, used as a Wasserstein critic value or as a
    BCE logit depending on the adversarial loss.

    Example:
    >>> tomogan_discriminator(256).count_params()
    673477
    """
    if patch_size < 8 or patch_size % 8:
        raise ValueError(f"patch_size must be a multiple of 8, got {patch_size}")
    inputs = keras.Input(shape=(patch_size, patch_size, 1), name="image")
    x = inputs
    for i, (filters, stride) in enumerate(
        ((64, 1), (64, 2), (128, 1), (128, 2), (128, 1), (4, 2)), start=1
    ):
        x = _conv(filters, 3, f"conv{i}", strides=stride)(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(64, activation="relu", name="dense")(x)
    outputs = layers.Dense(1, dtype="float32", name="logit")(x)
    return keras.Model(inputs, outputs, name=name)
