"""tomogan_tf.losses.adl: a-trous pyramid and soft histogram losses, against NumPy/SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from helpers import checkerboard
from scipy import ndimage

from tomogan_tf.losses.adl import (
    B3_KERNEL,
    PREBLUR_KERNEL,
    atrous_pyramid,
    histogram_loss,
    pyramid_loss,
    soft_histogram,
)

RNG = np.random.default_rng(0)
IMAGE = RNG.random((2, 16, 16, 1)).astype("float32")
OTHER = RNG.random((2, 16, 16, 1)).astype("float32")
VOLUME = RNG.random((1, 16, 16, 16, 1)).astype("float32")


def reference_pyramid(x: np.ndarray, levels: int = 3) -> list[np.ndarray]:
    """The a-trous decomposition by SciPy (float64); its "mirror" mode is numpy's "reflect"."""

    def blur(a, taps, dilation):
        kernel = np.zeros(4 * dilation + 1)
        kernel[::dilation] = taps
        for axis in range(1, a.ndim - 1):
            a = ndimage.correlate1d(a, kernel, axis=axis, mode="mirror")
        return a

    current = blur(x.astype("float64"), PREBLUR_KERNEL, 1)
    bands = []
    for level in range(levels):
        coarser = blur(current, B3_KERNEL, 2**level)
        bands.append(current - coarser)
        current = coarser
    return [*bands, current]


# ----------------------------------------------------------------------------- pyramid


@pytest.mark.parametrize(
    "shape",
    [(2, 16, 12, 3), (1, 3, 2, 1), (1, 8, 10, 6, 2)],
    ids=["2d", "2d-smaller-than-padding", "3d"],
)
def test_pyramid_matches_scipy_and_sums_to_preblurred_input(shape):
    x = RNG.random(shape).astype("float32")
    bands = [np.asarray(b) for b in atrous_pyramid(x, levels=3)]
    reference = reference_pyramid(x, levels=3)
    assert len(bands) == 4
    assert all(b.shape == shape for b in bands)
    for band, ref in zip(bands, reference, strict=True):
        np.testing.assert_allclose(band, ref, atol=1e-5)
    preblurred = reference_pyramid(x, levels=0)[0]
    np.testing.assert_allclose(sum(bands), preblurred, atol=1e-5)
    np.testing.assert_allclose(np.asarray(atrous_pyramid(x, levels=0)[0]), preblurred, atol=1e-5)
    # The pre-blur really blurs (otherwise "sums to the pre-blurred input" would be vacuous).
    assert np.abs(preblurred - x).max() > 0.05


def test_pyramid_loss_zero_for_identical_2d_and_3d():
    assert float(pyramid_loss(IMAGE, IMAGE)) == 0.0
    assert float(pyramid_loss(VOLUME, VOLUME)) == 0.0
    assert float(pyramid_loss(VOLUME, VOLUME + 0.1 * checkerboard(VOLUME.shape))) > 1e-4


def test_pyramid_loss_counts_every_band():
    # A change in the finest band only: ADL's code, which kept the last band's loss,
    # would score it zero.
    perturbed = IMAGE + 0.1 * checkerboard(IMAGE.shape)
    bands = [np.abs(np.asarray(b)).mean() for b in atrous_pyramid(IMAGE - perturbed)]
    assert bands[0] > 1e-3 and max(bands[1:]) < 1e-6
    np.testing.assert_allclose(float(pyramid_loss(IMAGE, perturbed)), bands[0] / 3, rtol=1e-5)

    # In general, the mean of the per-band L1s over all detail bands (not the residual).
    pairs = zip(reference_pyramid(IMAGE), reference_pyramid(OTHER), strict=True)
    per_band = [np.abs(a - b).mean() for a, b in pairs]
    np.testing.assert_allclose(float(pyramid_loss(IMAGE, OTHER)), np.mean(per_band[:3]), rtol=1e-4)
    assert not np.isclose(np.mean(per_band[:3]), per_band[2] / 3, rtol=0.05)


# --------------------------------------------------------------------------- histogram


def test_soft_histogram_agrees_with_numpy_histogram():
    n = 64
    gradient = np.linspace(0.0, 1.0, n * n, dtype="float32").reshape(n, n)
    noise = RNG.random((2, n, n), dtype="float32")
    # Four (image, channel) pairs: each must get its own histogram.
    images = np.stack([np.stack([gradient, noise[0]], -1), np.stack([noise[1], 1 - gradient], -1)])
    soft = np.asarray(soft_histogram(images, bins=256))
    assert soft.shape == (2, 2, 256)
    np.testing.assert_allclose(soft.sum(axis=-1), 1.0, atol=1e-5)
    assert soft.min() >= 0.0

    smooth = np.array([0.25, 0.5, 0.25])
    for b in range(2):
        for c in range(2):
            values = images[b, ..., c].ravel()
            hard = np.histogram(values, bins=256, range=(0.0, 1.0))[0] / values.size
            # Tolerance 1 (exact, not statistical): the triangular kernel splits each value
            # between the two bin centres around it, while numpy puts it all at the nearer
            # one; moving it back costs its distance to that centre, min(f, 1 - f) bins. So
            # the earth mover's distance (in bins; in 1-D the L1 distance of the CDFs) is at
            # most the mean of min(f, 1 - f) (<= 1/2), up to float32 rounding. A histogram
            # shifted by one bin, or mixing images or channels, has about 1 bin and fails.
            emd = np.abs(np.cumsum(soft[b, c]) - np.cumsum(hard)).sum()
            t = np.clip(values.astype("float64") * 256 - 0.5, 0, 255)
            f = t - np.floor(t)
            assert emd <= np.minimum(f, 1 - f).mean() + 1e-3
            # Tolerance 2 (the bin-by-bin view): after the same [1, 2, 1] / 4 smoothing, the
            # total-variation distance is < 0.05. Measured: 2e-4 for the gradient, 0.016 for
            # noise (16 values per bin: the mass split to neighbours does not cancel exactly).
            tv = 0.5 * np.abs(np.convolve(soft[b, c], smooth) - np.convolve(hard, smooth)).sum()
            assert tv < 0.05


def test_soft_histogram_bandwidth_and_range():
    x = np.full((1, 4, 4, 1), 0.3, "float32")
    # Centres 0.125, 0.375, ...: 0.3 is 0.7 of the way from centre 0 to centre 1.
    np.testing.assert_allclose(np.asarray(soft_histogram(x, bins=4))[0, 0], [0.3, 0.7, 0, 0])
    # Half-width 2 bins: weights 1 - |0.7 - j| / 2 at centres -1 (folded into bin 0) .. 2.
    wide = np.asarray(soft_histogram(x, bins=4, bandwidth=0.5))[0, 0]
    np.testing.assert_allclose(wide, np.array([0.15 + 0.65, 0.85, 0.35, 0]) / 2, atol=1e-6)
    # Out-of-range values are clamped into the end bins.
    edges = np.asarray(soft_histogram(np.array([[[[-1.0]], [[2.0]]]], "float32"), bins=4))
    np.testing.assert_allclose(edges[0, 0], [0.5, 0, 0, 0.5])
    with pytest.raises(ValueError, match="bandwidth"):
        soft_histogram(x, bins=4, bandwidth=0.1)


def test_histogram_loss_zero_for_identical_and_positive_otherwise():
    assert float(histogram_loss(IMAGE, IMAGE)) == 0.0
    assert float(histogram_loss(VOLUME, VOLUME)) == 0.0
    assert float(histogram_loss(IMAGE, IMAGE**2)) > 0.0


# --------------------------------------------------------------------------- gradients


def test_histogram_loss_gradient_matches_finite_differences():
    # float64: the normalised histograms differ by ~1e-3, so the loss is ~1e-6.
    y_true = IMAGE.astype("float64")
    y_pred = tf.Variable(OTHER.astype("float64"))
    with tf.GradientTape() as tape:
        loss = histogram_loss(y_true, y_pred)
    grad = tape.gradient(loss, y_pred).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
    direction = RNG.standard_normal(IMAGE.shape)
    eps = 1e-8  # far below a bin (1/256): no value crosses a bin centre (a kink)

    def at(v):
        return float(histogram_loss(y_true, OTHER.astype("float64") + v * direction))

    numeric = (at(eps) - at(-eps)) / (2 * eps)
    np.testing.assert_allclose((grad * direction).sum(), numeric, rtol=1e-3)


def test_pyramid_loss_gradient_is_finite_and_nonzero():
    y_pred = tf.Variable(OTHER)
    with tf.GradientTape() as tape:
        loss = pyramid_loss(IMAGE, y_pred)
    grad = tape.gradient(loss, y_pred).numpy()
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0


def test_losses_trace_with_unknown_shapes():
    spec = tf.TensorSpec([None, None, None, 1], tf.float32)

    @tf.function(input_signature=[spec, spec])
    def both(a, b):
        return pyramid_loss(a, b), histogram_loss(a, b)

    traced = [float(v) for v in both(IMAGE, OTHER)]
    eager = [float(pyramid_loss(IMAGE, OTHER)), float(histogram_loss(IMAGE, OTHER))]
    np.testing.assert_allclose(traced, eager, rtol=1e-5)
