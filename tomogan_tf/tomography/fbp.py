"""Filtered back-projection of parallel-beam sinograms, and the angle splits of Noise2Inverse.

Reconstruction is scikit-image's ``iradon`` (ramp filter, linear interpolation, the
reconstruction circle inscribed in the detector), which `data_tools.scanner` also uses,
so slices reconstructed here match the package's synthetic training data. It takes the
rotation axis at detector column ``W // 2``; any other centre is met by shifting each
projection first (`centre_shift`), with linear interpolation.

Units: a sinogram of line integrals ``-log(I / I0)`` per detector pixel reconstructs to
attenuation in 1/pixel; given the pixel size in mm, in 1/mm.

Noise2Inverse (Hendriksen et al. 2020) reconstructs K sub-sets of the angles on their
own: `angle_splits` deals angle ``i`` to split ``i mod K``, so every split covers the
half-turn evenly and their noise is independent (each projection is in exactly one).
"""

from __future__ import annotations

import numpy as np


def angle_splits(count: int, splits: int) -> list[np.ndarray]:
    """Indices of ``count`` angles dealt into ``splits`` disjoint, interleaved subsets.

    >>> [s.tolist() for s in angle_splits(7, 3)]
    [[0, 3, 6], [1, 4], [2, 5]]
    """
    if splits < 1:
        raise ValueError(f"splits must be at least 1, got {splits}")
    if count < splits:
        raise ValueError(f"{count} angles cannot be split {splits} ways")
    return [np.arange(k, count, splits) for k in range(splits)]


def centre_shift(sinograms: np.ndarray, centre: float | None) -> np.ndarray:
    """``sinograms`` (..., angles, W) shifted so that column ``centre`` lands on ``W // 2``.

    Linear interpolation; columns shifted in from beyond the detector repeat its edge.
    ``None`` (or ``W // 2`` itself) returns the input unchanged.
    """
    width = sinograms.shape[-1]
    if centre is None or float(centre) == width // 2:
        return sinograms
    source = np.arange(width, dtype=np.float64) + (float(centre) - width // 2)
    source = np.clip(source, 0, width - 1)
    left = np.floor(source).astype(np.int64)
    right = np.minimum(left + 1, width - 1)
    frac = (source - left).astype(np.float32)
    return sinograms[..., left] * (1 - frac) + sinograms[..., right] * frac


def fbp(
    sinograms: np.ndarray,
    theta: np.ndarray,
    centre: float | None = None,
    pixel_mm: float | None = None,
) -> np.ndarray:
    """Slices (k, W, W) float32 from sinograms (k, angles, W) of line integrals.

    ``theta`` holds the angles in degrees; ``centre`` is the rotation axis's detector
    column (default ``W // 2``); with ``pixel_mm`` the result is in 1/mm, else 1/pixel.
    """
    from skimage.transform import iradon

    sinograms = np.asarray(sinograms, dtype=np.float32)
    if sinograms.ndim == 2:
        sinograms = sinograms[None]
    theta = np.asarray(theta, dtype=np.float64)
    if sinograms.ndim != 3 or sinograms.shape[1] != len(theta):
        raise ValueError(
            f"sinograms of shape {sinograms.shape} do not match {len(theta)} angles "
            "(expected (slices, angles, width))"
        )
    shifted = centre_shift(sinograms, centre)
    width = sinograms.shape[-1]
    out = np.empty((len(sinograms), width, width), np.float32)
    for i, sinogram in enumerate(shifted):
        out[i] = iradon(sinogram.T, theta=theta, output_size=width, filter_name="ramp",
                        circle=True)  # fmt: skip
    if pixel_mm is not None:
        out /= np.float32(pixel_mm)
    return out
