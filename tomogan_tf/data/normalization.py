"""Robust percentile normalisation: how raw values of any units reach the network.

Two policies, both with ``for_image(image) -> Normalizer``:

- `PerImageNormalization` (what training writes today): every image is mapped by
  its OWN noisy percentiles (0.5 and 99.5 by default) to [0, 1], in training as in
  inference, and the target of a training pair goes through the noisy image's map,
  so the map inverted at the output is the one the target was put through.
  Percentiles move with any affine change of units (1/mm, 1/pixel, HU, integer
  counts with any offset and scale, 8-bit), so the network sees the same numbers
  whatever units the data came in, and the result comes back in those units.
  Each slice is mapped on its own, so the result does not depend on which other
  slices share its stack or shard.
- `Normalizer` itself, a fixed window fitted once to the training stack (runs made
  before per-image normalisation); inputs in other units than that stack's cannot
  be mapped, and `check_range` says so.

Values far outside the window (hot pixels, metal, dead pixels) are clipped to
``[-margin, 1 + margin]`` so that they cannot dominate a squared-error loss.

The module is NumPy at import: the graph twins (`percentile_window_tf`,
`windows_tf`) import TensorFlow when called, so that fitting a window and checking
the inputs happen before TensorFlow loads in the command-line tools.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np

from tomogan_tf.data.sources import ImageStack
from tomogan_tf.errors import InputError

if TYPE_CHECKING:
    import tensorflow as tf

# How much of the stack the percentiles are estimated from: evenly spaced slices,
# each subsampled to about this many pixels, so the estimate never loads a whole file.
PERCENTILE_SLICES = 32
PIXELS_PER_SLICE = 65536
# A window narrower than this fraction of the image's largest magnitude is noise on a
# constant image (or a few outliers on one): there is nothing to normalise.
DEGENERATE_RELATIVE_WIDTH = 1e-6
# A fixed-window model: more than this fraction of an image outside the window's
# clipping range means the image is in other units than the training data.
OFF_RANGE_FRACTION = 0.05


class UnmappableImage(ValueError):
    """An image the model's normalisation cannot map sensibly (message says why)."""


def subsample_stride(height: int, width: int) -> int:
    """Stride that leaves about `PIXELS_PER_SLICE` pixels of an image for percentiles."""
    return max(1, int(np.sqrt(height * width / PIXELS_PER_SLICE)))


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
        lo, hi = -self.margin, 1.0 + self.margin
        if isinstance(x, np.ndarray) and x.ndim:  # in place on one new array (training reads)
            y = np.subtract(x, self.low)
            np.divide(y, self.scale, out=y)
            np.clip(y, lo, hi, out=y)
            return y if y.dtype == np.float32 else y.astype(np.float32)
        y = (x - self.low) / self.scale
        if isinstance(y, (np.ndarray, np.generic, float)):
            return np.clip(y, lo, hi).astype(np.float32)
        import tensorflow as tf  # a tensor: TensorFlow is loaded already

        return tf.clip_by_value(y, lo, hi)

    def invert(self, y):
        """Map normalised values back to the raw units."""
        return y * self.scale + self.low

    def for_image(self, image: np.ndarray) -> Normalizer:
        """The fixed window serves every image (the policy interface)."""
        return self

    def check_range(self, image: np.ndarray) -> None:
        """Raise `UnmappableImage` if much of ``image`` lies outside the clipping range.

        A fixed window only fits data in the training data's units: a HU or uint16 image
        handed to a model trained in 1/mm is clipped almost everywhere.
        """
        y = (np.asarray(image, np.float64) - self.low) / self.scale
        outside = float(np.mean((y < -self.margin) | (y > 1.0 + self.margin)))
        if outside > OFF_RANGE_FRACTION:
            lo, hi = np.percentile(image, (0.5, 99.5))
            raise UnmappableImage(
                f"values {lo:.4g}..{hi:.4g} are nothing like the model's fixed window"
                f" {self.low:.4g}..{self.high:.4g} ({outside:.0%} of the pixels would be"
                " clipped): other units than its training data? Convert them, or use a"
                " model with per-image normalisation"
            )

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        return cls(**{k: float(v) for k, v in d.items()})


def percentile_window(image: np.ndarray, percentiles=(0.5, 99.5)) -> tuple[float, float]:
    """Percentiles of ``image`` (H, W), from a regular subsample of about 65k pixels."""
    stride = subsample_stride(*image.shape[-2:])
    low, high = np.percentile(image[..., ::stride, ::stride], percentiles)
    return float(low), float(high)


def percentile_window_tf(images: tf.Tensor, percentiles=(0.5, 99.5)) -> tf.Tensor:
    """`percentile_window` of each (H, W) image of a (batch, H, W) tensor, in the graph.

    Same subsample and the same linear interpolation as ``np.percentile``, so a
    SavedModel maps an image exactly as the Python denoiser does. Returns (batch, 2).
    """
    import tensorflow as tf

    height, width = tf.shape(images)[1], tf.shape(images)[2]
    pixels = tf.cast(height * width, tf.float64)
    stride = tf.maximum(1, tf.cast(tf.sqrt(pixels / PIXELS_PER_SLICE), tf.int32))
    sample = images[:, ::stride, ::stride]
    values = tf.sort(tf.reshape(tf.cast(sample, tf.float64), [tf.shape(images)[0], -1]), axis=-1)
    last = tf.cast(tf.shape(values)[1] - 1, tf.float64)
    out = []
    for q in percentiles:
        position = q / 100.0 * last
        below = tf.cast(tf.floor(position), tf.int32)
        above = tf.minimum(below + 1, tf.cast(last, tf.int32))
        frac = position - tf.floor(position)
        lo, hi = tf.gather(values, below, axis=1), tf.gather(values, above, axis=1)
        out.append(lo + frac * (hi - lo))
    return tf.stack(out, axis=-1)


def degenerate(low, high, magnitude):
    """True where a window is empty or too narrow to normalise (works on arrays and tensors)."""
    return (high - low) <= DEGENERATE_RELATIVE_WIDTH * magnitude


@dataclass(frozen=True)
class PerImageNormalization:
    """Each image mapped by its own percentiles: the same numbers whatever its units.

    Example:
    >>> policy = PerImageNormalization()
    >>> image = np.linspace(0.0, 0.02, 10000).reshape(100, 100)
    >>> hu = image / 0.02 * 1000.0 - 1000.0  # the same image in "HU"
    >>> a, b = policy.for_image(image), policy.for_image(hu)
    >>> bool(np.allclose(a.apply(image), b.apply(hu), atol=1e-5))
    True
    """

    low_percentile: float = 0.5
    high_percentile: float = 99.5
    margin: float = 1.0

    @property
    def percentiles(self) -> tuple[float, float]:
        return (self.low_percentile, self.high_percentile)

    def for_image(self, image: np.ndarray) -> Normalizer:
        """The window of one (H, W) image; raises `UnmappableImage` when it is degenerate."""
        low, high = percentile_window(image, self.percentiles)
        magnitude = max(abs(low), abs(high), float(np.max(np.abs(image))))
        if degenerate(low, high, magnitude):
            raise UnmappableImage(
                f"is constant (about {low:.6g}) over its {self.low_percentile:g}-"
                f"{self.high_percentile:g} percentiles: nothing to denoise"
            )
        return Normalizer(low, high, self.margin)

    def check_range(self, image: np.ndarray) -> None:
        """Any range maps (`for_image` itself refuses degenerate images)."""

    def to_dict(self) -> dict:
        return {"scope": "image", **asdict(self)}


Normalization = Normalizer | PerImageNormalization


def windows_tf(policy: Normalization, images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """``(low, high, ok)`` per (H, W) image of a (k, H, W) tensor, each of shape (k,).

    The graph twin of ``policy.for_image``: ``ok`` is False where the window is
    degenerate (such an image is to be passed through unchanged).
    """
    import tensorflow as tf

    k = tf.shape(images)[0]
    if isinstance(policy, Normalizer):
        ones = tf.ones([k], tf.float64)
        return ones * policy.low, ones * policy.high, tf.ones([k], tf.bool)
    window = percentile_window_tf(images, policy.percentiles)
    low, high = window[:, 0], window[:, 1]
    magnitude = tf.maximum(
        tf.maximum(tf.abs(low), tf.abs(high)),
        tf.cast(tf.reduce_max(tf.abs(images), axis=[1, 2]), tf.float64),
    )
    return low, high, tf.logical_not(degenerate(low, high, magnitude))


def normalization_from_dict(d: dict) -> Normalization:
    """Read either policy back from a run's ``config.json`` (no scope: a fixed window)."""
    d = dict(d)
    if d.pop("scope", "fixed") == "image":
        return PerImageNormalization(**{k: float(v) for k, v in d.items()})
    return Normalizer.from_dict(d)


class UnmappableWarning(UserWarning):
    """An image was passed through unchanged because it could not be normalised."""


def fit_normalizer(
    stack: ImageStack,
    percentiles: tuple[float, float] = (0.5, 99.5),
    margin: float = 1.0,
) -> Normalizer:
    """Estimate a `Normalizer` from evenly spaced, subsampled slices of ``stack``."""
    n, height, width = stack.shape
    stride = max(1, int(np.sqrt(height * width / PIXELS_PER_SLICE)))
    indices = np.unique(np.linspace(0, n - 1, min(n, PERCENTILE_SLICES)).astype(int))
    region = np.s_[::stride, ::stride]
    with stack.opened():
        samples = [
            stack.read_range(i, i + 1, region, where=f"in slice {i}").ravel() for i in indices
        ]
    low, high = np.percentile(np.concatenate(samples), percentiles)
    if not high > low:
        raise InputError(
            stack.path,
            f"{stack.describe()} is constant ({low:g}) over its {percentiles} percentiles;"
            " nothing to normalise",
        )
    return Normalizer(float(low), float(high), margin)
