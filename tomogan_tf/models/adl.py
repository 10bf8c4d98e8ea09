"""ADL "Efficient-UNet" denoiser and discriminator (Ghahremani et al., arXiv 2204.14100).

The denoiser is a 3-level residual U-Net (widths 96/128/160, bridge 192) with a
"content enhancer" of dilated 7x7 convolutions on the raw input feeding the
full-resolution decoder stage. Small "transformer" heads read out a sigmoid
image at H, H/2 and H/4, so that the multi-scale (pyramid) losses of ADL see
one prediction per scale. The discriminator is the same U-Net, narrower
(16/32/64, bridge 128) and without the enhancer, judging at four scales.

Every convolution is bias-free, as in the authors' TensorFlow code: the batch
normalisations inside every residual block supply the offsets.

2-D and 3-D models come from one code path: ``dims`` picks Conv2D/Conv3D (and
the transposed variants); everything else (batch norm, concatenation, adds) is
rank-agnostic. The authors released only 2-D code, so 3-D is this topology with
cubic kernels, not a published network.
"""

from __future__ import annotations

import keras
from keras import layers

DENOISER_WIDTHS = (96, 128, 160, 192)
DISCRIMINATOR_WIDTHS = (16, 32, 64, 128)

# Convolution and transposed-convolution classes per number of spatial dims.
_CONV_LAYERS: dict[int, tuple[type[layers.Layer], type[layers.Layer]]] = {
    2: (layers.Conv2D, layers.Conv2DTranspose),
    3: (layers.Conv3D, layers.Conv3DTranspose),
}


def _check_dims(dims: int) -> None:
    if dims not in _CONV_LAYERS:
        raise ValueError(f"dims must be 2 or 3, got {dims}")


def _conv(dims: int, filters: int, kernel: int, name: str, strides: int = 1, **kwargs):
    conv = _CONV_LAYERS[dims][0]
    return conv(
        filters, kernel, strides=strides, padding="same", use_bias=False, name=name, **kwargs
    )


def _residual_block(x, filters: int, name: str, dims: int, strides: int = 1):
    """conv3x3(stride) - BN - ReLU - conv3x3 - BN, plus a strided 1x1 shortcut; add; ReLU."""
    y = _conv(dims, filters, 3, f"{name}_conv1", strides)(x)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(dims, filters, 3, f"{name}_conv2")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    shortcut = _conv(dims, filters, 1, f"{name}_shortcut", strides)(x)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.ReLU(name=f"{name}_relu2")(y)


def _content_enhancer(x, filters: int, dims: int, name: str = "enhancer"):
    """Dilated 7x7 convs (rates 1, 2, 4) give the full-resolution decoder a wide view
    of the raw input (receptive field 25) without downsampling it."""
    branches = [
        _conv(dims, filters // 2, 7, f"{name}_dil{rate}", dilation_rate=rate)(x)
        for rate in (1, 2, 4)
    ]
    y = layers.Concatenate(name=f"{name}_concat")(branches)
    y = layers.BatchNormalization(name=f"{name}_bn1")(y)
    y = layers.ReLU(name=f"{name}_relu")(y)
    y = _conv(dims, filters, 7, f"{name}_conv")(y)
    y = layers.BatchNormalization(name=f"{name}_bn2")(y)
    shortcut = _conv(dims, filters, 1, f"{name}_shortcut")(x)
    y = layers.Add(name=f"{name}_add")([y, shortcut])
    return layers.LeakyReLU(negative_slope=0.1, name=f"{name}_lrelu")(y)


def _decoder_stage(x, skip, filters: int, dims: int, name: str):
    """Transposed 3x3 stride-2 conv (N(0, 0.02) init, as the authors'), concat skip, block."""
    up = _CONV_LAYERS[dims][1](
        filters,
        3,
        strides=2,
        padding="same",
        use_bias=False,
        kernel_initializer=keras.initializers.RandomNormal(0.0, 0.02),
        name=f"{name}_up",
    )(x)
    x = layers.Concatenate(name=f"{name}_concat")([up, skip])
    return _residual_block(x, filters, f"{name}_res", dims)


def _head(x, filters: int, blocks: int, dims: int, name: str, activation: str | None):
    """Output head ("transformer"): residual blocks halving the width, then a 1x1 conv
    to one channel, computed in float32 so that outputs stay float32 under mixed precision."""
    for i in range(1, blocks + 1):
        filters //= 2
        x = _residual_block(x, filters, f"{name}_res{i}", dims)
    return _conv(dims, 1, 1, f"{name}_out", activation=activation, dtype="float32")(x)


def _unet(inputs, widths: tuple[int, int, int, int], dims: int, enhancer: bool):
    """Encoder, bridge and decoder; returns the bridge and the three decoder stages."""
    f1, f2, f3, fb = widths
    s1 = _residual_block(inputs, f1, "enc1", dims)
    s2 = _residual_block(s1, f2, "enc2", dims, strides=2)
    s3 = _residual_block(s2, f3, "enc3", dims, strides=2)
    bridge = _residual_block(s3, fb, "bridge", dims, strides=2)
    d1 = _decoder_stage(bridge, s3, f3, dims, "dec1")
    d2 = _decoder_stage(d1, s2, f2, dims, "dec2")
    skip = s1
    if enhancer:
        enhanced = _content_enhancer(inputs, f1, dims)
        skip = layers.Concatenate(name="dec3_skip")([s1, enhanced])
    d3 = _decoder_stage(d2, skip, f1, dims, "dec3")
    return bridge, d1, d2, d3


def _input(dims: int, channels: int, name: str):
    return keras.Input(shape=(None,) * dims + (channels,), name=name)


def adl_denoiser(depth: int = 1, dims: int = 2, name: str = "adl_denoiser") -> keras.Model:
    """Build the ADL Efficient-UNet denoiser.

    Args:
        depth: adjacent slices stacked as input channels (odd, 2-D only; 3-D
            volumes carry their neighbours in the extra axis and take 1 channel).
        dims: 2 for (batch, H, W, depth) images, 3 for (batch, D, H, W, 1) volumes.
        name: model name.

    Returns:
        A functional `keras.Model` whose outputs are the list ``[full, half,
        quarter]``: one-channel sigmoid images (values in [0, 1]) at H, H/2 and
        H/4, the coarse ones for ADL's pyramid loss. Spatial sizes must be
        multiples of `INPUT_MULTIPLE_ADL`.

    Example:
    >>> adl_denoiser().count_params()
    4731204
    >>> adl_denoiser(dims=3).count_params()
    16495428
    """
    _check_dims(dims)
    if depth < 1 or depth % 2 == 0:
        raise ValueError(f"depth must be a positive odd number, got {depth}")
    if dims == 3 and depth != 1:
        raise ValueError(f"3-D volumes take one channel, got depth={depth}")
    inputs = _input(dims, depth, "noisy")
    f1, f2, f3, _ = DENOISER_WIDTHS
    _, d1, d2, d3 = _unet(inputs, DENOISER_WIDTHS, dims, enhancer=True)
    quarter = _head(d1, f3, 3, dims, "quarter", "sigmoid")
    half = _head(d2, f2, 2, dims, "half", "sigmoid")
    full = _head(d3, f1, 1, dims, "full", "sigmoid")
    return keras.Model(inputs, [full, half, quarter], name=name)


def adl_discriminator(dims: int = 2, name: str = "adl_discriminator") -> keras.Model:
    """Build the ADL discriminator: the denoiser's U-Net at widths 16/32/64 (bridge 128).

    It judges realism at four scales at once, so the adversarial loss covers both
    global structure (the bridge) and pixel-level texture (the full-size map).
    Its heads halve the width per residual block like the denoiser's (as in the
    authors' PyTorch release; their LeakyReLU before the 1x1 conv is left out, as
    it follows a ReLU and so does nothing). Outputs are unbounded logits, the
    bridge one included (the authors' TensorFlow code puts a sigmoid there); any
    sigmoid belongs in the loss. The order is coarse to fine, unlike the authors'
    [bridge, full, half, quarter].

    Args:
        dims: 2 for (batch, H, W, 1) images, 3 for (batch, D, H, W, 1) volumes.
        name: model name.

    Returns:
        A functional `keras.Model` whose outputs are the list ``[bridge, quarter,
        half, full]`` of one-channel logit maps at H/8, H/4, H/2 and H.

    Example:
    >>> adl_discriminator().count_params()
    609976
    >>> adl_discriminator(dims=3).count_params()
    1772632
    """
    _check_dims(dims)
    inputs = _input(dims, 1, "image")
    f1, f2, f3, _ = DISCRIMINATOR_WIDTHS
    bridge, d1, d2, d3 = _unet(inputs, DISCRIMINATOR_WIDTHS, dims, enhancer=False)
    bridge_map = _conv(dims, 1, 1, "bridge_out", dtype="float32")(bridge)
    quarter = _head(d1, f3, 3, dims, "quarter", None)
    half = _head(d2, f2, 2, dims, "half", None)
    full = _head(d3, f1, 1, dims, "full", None)
    return keras.Model(inputs, [bridge_map, quarter, half, full], name=name)
