"""Pixel-wise fidelity losses."""

from __future__ import annotations

from keras import ops


def mean_squared_error(y_true, y_pred):
    """Mean over all pixels of the squared difference (a scalar)."""
    return ops.mean(ops.square(ops.cast(y_true, y_pred.dtype) - y_pred))
