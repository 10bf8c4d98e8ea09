"""Pixel-wise fidelity and smoothness losses (images or volumes, channels last)."""

from __future__ import annotations

from keras import ops


def mean_squared_error(y_true, y_pred):
    """Mean over all pixels of the squared difference (a scalar)."""
    return ops.mean(ops.square(ops.cast(y_true, y_pred.dtype) - y_pred))


def mean_absolute_error(y_true, y_pred):
    """Mean over all pixels of the absolute difference (a scalar)."""
    return ops.mean(ops.abs(ops.cast(y_true, y_pred.dtype) - y_pred))


def smoothness_loss(images):
    """ImageDenoisingGAN's smoothness term: mean squared difference between each pixel
    and its neighbour one step along every spatial axis (right and down in 2-D).

    >>> import numpy as np
    >>> float(smoothness_loss(np.array([[[[0.0], [1.0]], [[0.0], [1.0]]]], "float32")))
    0.5
    """
    images = ops.convert_to_tensor(images)
    rank = len(images.shape)
    terms = []
    for axis in range(1, rank - 1):
        n = ops.shape(images)[axis]
        head = ops.take(images, ops.arange(0, n - 1), axis=axis)
        tail = ops.take(images, ops.arange(1, n), axis=axis)
        terms.append(ops.mean(ops.square(tail - head)))
    return ops.sum(ops.stack(terms))
