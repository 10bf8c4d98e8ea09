"""Robust percentile normalisation, computed once from training data and stored with the run.

Raw detector counts (uint16), reconstructions in 1/mm (float) and 8-bit exports all
end up with the bulk of their values in [0, 1]. Values far outside the percentile
window (hot pixels, metal, dead pixels) are clipped so that they cannot dominate a
squared-error loss; the same mapping is inverted at inference so outputs come
back in the input's units.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import h5py
import numpy as np
import tensorflow as tf

from tomogan_tf.data.stacks import Stack
from tomogan_tf.errors import InputError

# How much of the stack the percentiles are estimated from: evenly spaced slices,
# each subsampled to about this many pixels, so the estimate never loads a whole file.
PERCENTILE_SLICES = 32
PIXELS_PER_SLICE = 65536


@dataclass(frozen=True)
class Normalizer:
    """Affine map ``(x - low) / (high - low)``, clipped to ``[-margin, 1 + margin]``.

    Example:
    >>> n = Normalizer(low=100.0, high=300.0)
    >>> float(n.apply(np.float32(200.0)))
    0.5
    >>> float(n.invert(np.float32(0.5)))
    200.0
    """

    low: float
    high: float
    margin: float = 1.0

    @property
    def scale(self) -> float:
        return self.high - self.low

    def apply(self, x):
        """Map raw values to normalised units (works on NumPy arrays and tensors)."""
        y = (x - self.low) / self.scale
        lo, hi = -self.margin, 1.0 + self.margin
        if tf.is_tensor(y):
            return tf.clip_by_value(y, lo, hi)
        return np.clip(y, lo, hi).astype(np.float32)

    def invert(self, y):
        """Map normalised values back to the raw units."""
        return y * self.scale + self.low

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        return cls(**{k: float(v) for k, v in d.items()})


def fit_normalizer(
    f: h5py.File,
    stack: Stack,
    percentiles: tuple[float, float] = (0.5, 99.5),
    margin: float = 1.0,
) -> Normalizer:
    """Estimate a `Normalizer` from evenly spaced, subsampled slices of ``stack`` in ``f``."""
    n, height, width = stack.shape
    stride = max(1, int(np.sqrt(height * width / PIXELS_PER_SLICE)))
    indices = np.unique(np.linspace(0, n - 1, min(n, PERCENTILE_SLICES)).astype(int))
    samples = [stack.read(f, i, i + 1, np.s_[::stride, ::stride]).ravel() for i in indices]
    for i, sample in zip(indices, samples, strict=True):
        if not np.isfinite(sample).all():
            raise InputError(f.filename, f"{stack.describe()} has NaN or Inf values in slice {i}")
    low, high = np.percentile(np.concatenate(samples), percentiles)
    if not high > low:
        raise InputError(
            f.filename,
            f"{stack.describe()} is constant ({low:g}) over its {percentiles} percentiles;"
            " nothing to normalise",
        )
    return Normalizer(float(low), float(high), margin)
