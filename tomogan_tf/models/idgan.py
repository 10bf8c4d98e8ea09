"""ImageDenoisingGAN generator and discriminator (M. M. Thomas's "Image Denoising GAN" blog).

The generator is an SRResNet-like stack that keeps the full resolution
throughout: a 9x9 stem, two 3x3 widening convs, three residual blocks of 128
channels, two narrowing convs, a long skip from the stem and a 9x9 output conv.
It predicts a bounded correction (tanh) added to the centre input slice.

Interpretation of the blog's "deconv" layers: it describes them as resize-conv
("sub-pixel") layers, but every convolution before them has stride 1, so there
is no resolution to recover. They are implemented as plain 3x3
conv-BN-LeakyReLU layers (128 -> 64 -> 32), which is what a stride-1 resize-conv
amounts to, and the network accepts any H and W.

Convolutions followed by batch normalisation carry no bias (BN's offset makes it
redundant); the generator's output conv and the discriminator's first and last
convs, which have no BN after them, keep theirs.
"""

from __future__ import annotations

import keras
from keras import layers

from tomogan_tf.models.layers import CentreSlice


def _conv_bn_lrelu(x, filters: int, kernel: int, name: str, strides: int = 1):
    x = layers.Conv2D(
        filters, kernel, strides=strides, padding="same", use_bias=False, name=f"{name}_conv"
    )(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.LeakyReLU(negative_slope=0.2, name=f"{name}_lrelu")(x)


def idgan_generator(depth: int = 1, name: str = "idgan_generator") -> keras.Model:
    """Build the ImageDenoisingGAN generator (residual learning, full resolution).

    Args:
        depth: number of adjacent slices stacked as input channels (odd; the
            centre one is the slice being denoised).
        name: model name.

    Returns:
        A functional `keras.Model` mapping (batch, H, W, depth) to (batch, H, W, 1),
        ``centre slice + tanh(correction)``; any H and W (nothing is downsampled).

    Example:
    >>> idgan_generator().count_params()
    1078593
    """
    if depth < 1 or depth % 2 == 0:
        raise ValueError(f"depth must be a positive odd number, got {depth}")
    inputs = keras.Input(shape=(None, None, depth), name="noisy")
    stem = _conv_bn_lrelu(inputs, 32, 9, "stem")
    x = _conv_bn_lrelu(stem, 64, 3, "widen1")
    x = _conv_bn_lrelu(x, 128, 3, "widen2")
    for i in range(1, 4):
        y = _conv_bn_lrelu(x, 128, 3, f"res{i}_a")
        y = _conv_bn_lrelu(y, 128, 3, f"res{i}_b")
        x = layers.Add(name=f"res{i}_add")([x, y])
    x = _conv_bn_lrelu(x, 64, 3, "deconv1")
    x = _conv_bn_lrelu(x, 32, 3, "deconv2")
    x = layers.Add(name="stem_skip")([x, stem])
    # Zero-initialised so that the untrained generator is the identity: with batch
    # statistics the 32 normalised channels would otherwise drive tanh to about +-0.9
    # and the first hundreds of steps would go into undoing that.
    correction = layers.Conv2D(
        1,
        9,
        padding="same",
        activation="tanh",
        kernel_initializer="zeros",
        dtype="float32",
        name="correction",
    )(x)
    centre = CentreSlice(name="centre_slice")(inputs)
    outputs = layers.Add(dtype="float32", name="denoised")([centre, correction])
    return keras.Model(inputs, outputs, name=name)


def idgan_discriminator(name: str = "idgan_discriminator") -> keras.Model:
    """Build the ImageDenoisingGAN patch discriminator.

    Five 4x4 convs (48 s2, 96 s2, 192 s2, 384 s1, 1 s1), BN on the middle three,
    LeakyReLU 0.2; the output is a map of unbounded logits at ceil(H/8) x ceil(W/8)
    (the sigmoid goes in the loss). Call this one model on both the real and the
    generated batch: the original code built two discriminator graphs with
    separate variables, so its real and fake branches never shared weights.

    Example:
    >>> idgan_discriminator().count_params()
    1557937
    """
    inputs = keras.Input(shape=(None, None, 1), name="image")
    x = layers.Conv2D(48, 4, strides=2, padding="same", name="conv1")(inputs)
    x = layers.LeakyReLU(negative_slope=0.2, name="conv1_lrelu")(x)
    for i, (filters, strides) in enumerate(((96, 2), (192, 2), (384, 1)), start=2):
        x = _conv_bn_lrelu(x, filters, 4, f"block{i}", strides)
    outputs = layers.Conv2D(1, 4, padding="same", dtype="float32", name="logits")(x)
    return keras.Model(inputs, outputs, name=name)
