"""Losses of ADL, Adversarial Distortion Learning (Ghahremani et al., arXiv 2204.14100).

The denoiser is trained at three scales on L1 + an a-trous pyramid (edge) loss + a
histogram loss (see `tomogan_tf.losses.reconstruction`), against a hinge-loss
discriminator (`tomogan_tf.losses.adversarial`). This reimplementation fixes three
bugs of the released TensorFlow code:

* its pyramid loss overwrote the per-band loss in its loop, so only the LAST detail band
  counted (then divided by the number of levels); here every band counts;
* its histogram loss used ``tf.histogram_fixed_width``, which has no gradient, so the
  term never trained anything; here the histogram is a differentiable soft histogram;
* its REFLECT padding needs every spatial size to exceed the padding (8 pixels at the
  third level), which fails at the quarter scale of small patches; here the reflection
  repeats as needed.

Everything works on 2-D images ``(batch, H, W, C)`` and 3-D volumes
``(batch, D, H, W, C)``, channels last, values in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from keras import backend, ops

# 5-tap Gaussian of sigma 0.6, the pre-blur of ADL's code ([0.002566, 0.1655, 0.6638, ...]).
_PREBLUR_TAPS = np.exp(-0.5 * (np.arange(-2, 3) / 0.6) ** 2)
PREBLUR_KERNEL = tuple(float(v) for v in _PREBLUR_TAPS / _PREBLUR_TAPS.sum())
# Cubic B-spline of the starlet transform (Starck & Murtagh).
B3_KERNEL = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)


def _spatial_axes(x) -> range:
    rank = len(x.shape)
    if rank not in (4, 5):
        raise ValueError(
            "expected channels-last images (batch, H, W, C) or volumes (batch, D, H, W, C);"
            f" got a tensor of rank {rank}"
        )
    return range(1, rank - 1)


def _reflect_indices(n, offset: int):
    """Indices of ``arange(n) + offset`` mirrored at the ends (numpy "reflect").

    The mirroring repeats with period ``2 (n - 1)``, so any offset works on any size,
    unlike ``tf.pad(mode="REFLECT")`` which needs ``n > |offset|``. A static size gives
    constant indices; a dynamic one (traced with unknown shape) computes them.
    """
    if isinstance(n, int):
        period = max(2 * (n - 1), 1)
        m = (np.arange(n) + offset) % period
        return np.where(m >= n, period - m, m).astype("int32")
    idx = ops.arange(n, dtype="int32") + offset
    period = ops.maximum(2 * (n - 1), 1)
    m = ops.mod(idx, period)
    return ops.where(m >= n, period - m, m)


def _blur(x, taps: Sequence[float], dilation: int = 1):
    """Separable blur by a symmetric 5-tap kernel: one 1-D depthwise pass per spatial axis.

    Each pass is written as shifted copies (gathers with reflected indices) weighted and
    summed, which keras.ops can do at any rank; its 3-D depthwise convolution cannot.
    """
    half = len(taps) // 2
    for axis in _spatial_axes(x):
        n = ops.shape(x)[axis]
        out = taps[half] * x
        for k in range(1, half + 1):
            before = ops.take(x, _reflect_indices(n, -k * dilation), axis=axis)
            after = ops.take(x, _reflect_indices(n, k * dilation), axis=axis)
            out = out + taps[half + k] * (before + after)
        x = out
    return x


def atrous_pyramid(images, levels: int = 3) -> list:
    """Undecimated a-trous (starlet) decomposition, as ADL's pyramid loss uses it.

    The images are pre-blurred by a 5-tap Gaussian (sigma 0.6), then blurred repeatedly
    by the B3-spline kernel ``[1, 4, 6, 4, 1] / 16`` dilated 1, 2, 4, ... times (reflect
    padding). Returns ``levels`` detail bands (differences of consecutive blurs, finest
    first) and the coarse residual: ``levels + 1`` tensors of the input's shape that sum
    back to the pre-blurred images. ``levels=0`` returns just the pre-blurred images.

    >>> x = np.random.default_rng(0).random((1, 16, 16, 1)).astype("float32")
    >>> bands = atrous_pyramid(x, levels=3)
    >>> len(bands), tuple(bands[0].shape)
    (4, (1, 16, 16, 1))
    """
    if levels < 0:
        raise ValueError(f"levels must be >= 0, got {levels}")
    current = _blur(ops.convert_to_tensor(images), PREBLUR_KERNEL)
    bands = []
    for level in range(levels):
        coarser = _blur(current, B3_KERNEL, dilation=2**level)
        bands.append(current - coarser)
        current = coarser
    return [*bands, current]


def pyramid_loss(y_true, y_pred, levels: int = 3):
    """Mean over the ``levels`` detail bands of the mean absolute band difference.

    ADL's edge loss. Its released code overwrote the loss in its loop, so only the last
    (coarsest) detail band counted; here every detail band has an equal share. The
    coarse residual is left out, as in ADL: low frequencies are the L1 term's job. The
    decomposition is linear, so the bands of ``y_true - y_pred`` are computed once.

    >>> x = np.random.default_rng(0).random((1, 16, 16, 1)).astype("float32")
    >>> float(pyramid_loss(x, x))
    0.0
    """
    if levels < 1:
        raise ValueError(f"pyramid_loss needs levels >= 1, got {levels}")
    y_pred = ops.convert_to_tensor(y_pred)
    diff = ops.cast(y_true, y_pred.dtype) - y_pred
    bands = atrous_pyramid(diff, levels)[:levels]
    return ops.mean(ops.stack([ops.mean(ops.abs(band)) for band in bands]))


def soft_histogram(
    images,
    bins: int = 256,
    value_range: tuple[float, float] = (0.0, 1.0),
    bandwidth: float | None = None,
):
    """Differentiable histogram of each image and channel: shape ``(batch, C, bins)``.

    Each value spreads its unit mass over nearby bin centres with a triangular kernel of
    half-width ``bandwidth`` (default: one bin width, i.e. linear interpolation between
    the two nearest centres), so the histogram moves smoothly with the pixels and has a
    gradient, unlike the hard histogram of ADL's code. Moving a value's mass back to the
    bin ``numpy.histogram`` picks costs at most half a bin. Each value touches only
    ``2 * ceil(bandwidth / bin width)`` bins, which are summed by a segment sum: memory
    is O(pixels x that), never O(pixels x bins) (a 512 x 512 image with 256 bins would
    need 256 MiB per image and channel). Values outside ``value_range`` are clamped into
    the end bins. Each histogram sums to 1.

    >>> x = np.full((1, 4, 4, 1), 0.3, "float32")
    >>> h = soft_histogram(x, bins=4)  # centres 0.125, 0.375, ...: 0.3 is 0.7 bins in
    >>> [round(float(v), 2) for v in h[0, 0]]
    [0.3, 0.7, 0.0, 0.0]
    """
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range must be increasing, got {value_range}")
    width = (hi - lo) / bins
    half_width = 1.0 if bandwidth is None else float(bandwidth) / width
    if half_width < 1.0:
        raise ValueError(f"bandwidth must be at least one bin width ({width:g}); got {bandwidth}")
    reach = math.ceil(half_width)

    x = ops.convert_to_tensor(images)
    if not backend.is_float_dtype(x.dtype):
        x = ops.cast(x, "float32")
    _spatial_axes(x)
    shape = ops.shape(x)
    batch, channels = shape[0], shape[-1]
    x = ops.reshape(x, (batch, -1, channels))
    # Position in bins, with bin centres at integers 0 .. bins - 1.
    t = (ops.clip(x, lo, hi) - lo) / width - 0.5
    first = ops.floor(t) - (reach - 1)
    offsets = ops.cast(ops.arange(2 * reach), x.dtype)
    centres = ops.expand_dims(first, -1) + offsets  # (batch, pixels, C, 2 * reach)
    weights = ops.relu(1.0 - ops.abs(ops.expand_dims(t, -1) - centres) / half_width)
    weights = weights / ops.sum(weights, axis=-1, keepdims=True)

    target = ops.clip(ops.cast(centres, "int32"), 0, bins - 1)
    row = ops.arange(batch, dtype="int32")[:, None] * channels + ops.arange(channels, dtype="int32")
    ids = ops.expand_dims(ops.expand_dims(row, 1), -1) * bins + target
    hist = ops.segment_sum(
        ops.reshape(weights, (-1,)),
        ops.reshape(ids, (-1,)),
        num_segments=batch * channels * bins,
    )
    hist = ops.reshape(hist, (batch, channels, bins))
    return hist / ops.sum(hist, axis=-1, keepdims=True)


def _log_cosh(x):
    """``log(cosh(x))``, accurate for the tiny differences of normalised histograms.

    The overflow-safe form ``|x| + softplus(-2|x|) - log 2`` cancels to rounding noise
    for |x| << 1, where the Taylor series is exact to float precision instead.
    """
    a = ops.abs(x)
    small = ops.minimum(a, 0.1)
    x2 = small * small
    series = x2 * (0.5 - x2 * (1.0 / 12.0 - x2 * (1.0 / 45.0)))
    large = a + ops.softplus(-2.0 * a) - math.log(2.0)
    return ops.where(a < 0.1, series, large)


def histogram_loss(y_true, y_pred, bins: int = 256):
    """Mean log-cosh of the difference of the soft histograms of each image and channel.

    The histograms are compared as densities (``bins`` x the fractions, so 1 per bin
    on average): the value then depends neither on the image size (ADL's raw counts
    grow with it) nor on the bin count, and a weight of 1 is of the order of the L1
    term. Zero for identical images; tracks the same loss on hard histograms (tested).

    >>> x = np.random.default_rng(0).random((2, 16, 16, 1)).astype("float32")
    >>> float(histogram_loss(x, x))
    0.0
    """
    y_pred = ops.convert_to_tensor(y_pred)
    y_true = ops.cast(y_true, y_pred.dtype)
    diff = soft_histogram(y_true, bins) - soft_histogram(y_pred, bins)
    return ops.mean(_log_cosh(bins * diff))
