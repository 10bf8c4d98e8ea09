"""Image quality figures printed by the data_tools CLIs, computed by skimage.metrics.

Both use ``skimage.metrics.peak_signal_noise_ratio`` with an explicit ``data_range``:
skimage's default for float images assumes values in [0, 1] (or [-1, 1]), which says
nothing about attenuation images in 1/mm (~0.02, slightly negative after FBP); and
``tomogan_tf.metrics`` scores normalised images with a fixed range of 1.  The ranges here
are the conventions each dataset documents, so the printed numbers stay comparable with
earlier runs:

* `mean_psnr` (training sets): one range for the whole stack, max - min of the clean
  stack, as in TomoGAN's evaluation;
* `psnr_per_slice` (held-out benchmark): each slice's own clean max - min, the protocol
  recorded in the held-out file's ``protocol`` attribute.
"""

from __future__ import annotations

import numpy as np

__all__ = ["mean_psnr", "psnr_per_slice"]


def _stacks(noisy: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    noisy = np.asarray(noisy, dtype=np.float64)
    clean = np.asarray(clean, dtype=np.float64)
    if noisy.shape != clean.shape or noisy.ndim != 3:
        raise ValueError(f"expected two equal (N, H, W) stacks, got {noisy.shape}, {clean.shape}")
    return noisy, clean


def _psnr(clean: np.ndarray, noisy: np.ndarray, data_range: float) -> float:
    # imported here: skimage.metrics loads scipy.stats (a second or more), which importing
    # data_tools, or a CLI run that stops at a bad flag, should not pay for
    from skimage.metrics import peak_signal_noise_ratio

    with np.errstate(divide="ignore"):  # identical slices: inf dB, not a warning
        return float(peak_signal_noise_ratio(clean, noisy, data_range=float(data_range)))


def mean_psnr(noisy: np.ndarray, clean: np.ndarray) -> float:
    """Mean per-slice PSNR (dB) of ``noisy`` vs ``clean`` stacks (N, H, W).

    ``data_range`` is max - min of ``clean`` over the whole stack, so all slices share one
    scale (as in TomoGAN evaluation).
    """
    noisy, clean = _stacks(noisy, clean)
    data_range = float(clean.max() - clean.min())
    return float(np.mean([_psnr(c, n, data_range) for n, c in zip(noisy, clean, strict=True)]))


def psnr_per_slice(noisy: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """PSNR (dB) of each slice, window = that clean slice's max - min (the benchmark protocol).

    Returns an (N,) float64 array, so callers can average per style or per row.
    """
    noisy, clean = _stacks(noisy, clean)
    return np.array([_psnr(c, n, c.max() - c.min()) for n, c in zip(noisy, clean, strict=True)])
