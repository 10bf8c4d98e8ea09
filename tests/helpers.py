"""Helpers for tests that need data on disk or a command run as a user runs it.

Import them as ``from helpers import ...`` (``tests/`` is on ``sys.path``, see
``pythonpath`` in pyproject.toml). ``conftest`` re-exports them under the same names
for the test files that still do ``from conftest import ...``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def smooth_stack(rng: np.random.Generator, n: int, height: int, width: int) -> np.ndarray:
    """Piecewise-smooth images (random discs on a gradient) that a denoiser can learn."""
    yy, xx = np.mgrid[0:height, 0:width]
    out = np.empty((n, height, width), np.float32)
    for i in range(n):
        image = 0.2 + 0.3 * rng.random() * xx / width
        for _ in range(4):
            cy, cx, r = rng.random(3) * [height, width, min(height, width) / 3]
            image = image + 0.5 * rng.random() * ((yy - cy) ** 2 + (xx - cx) ** 2 < r**2)
        out[i] = image
    return out


def write_pair_file(
    path: str,
    n_train: int = 8,
    n_test: int = 3,
    size: tuple[int, int] = (48, 48),
    sigma: float = 0.1,
    seed: int = 0,
) -> str:
    """An HDF5 file in the TomoGAN layout with Gaussian noise on smooth images."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        for split, n in (("train", n_train), ("test", n_test)):
            clean = smooth_stack(rng, n, *size)
            f[f"{split}_gt"] = clean
            f[f"{split}_ns"] = clean + sigma * rng.standard_normal(clean.shape).astype(np.float32)
    return path


def run_module(
    module: str, *args: str, timeout: float = 600, cwd: str | os.PathLike = ROOT
) -> subprocess.CompletedProcess:
    """Run ``python -m module args`` as a user would (from the repository root by default)."""
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes (to check that a file was left untouched)."""
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of two arrays' values."""
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def checkerboard(shape: tuple[int, ...]) -> np.ndarray:
    """+-1 at the Nyquist frequency along every spatial axis of a (batch, *spatial, C) shape.

    The B3 kernel of the a-trous pyramid removes it entirely and reflect padding
    continues it, so it lives in the pyramid's finest band only.
    """
    grids = np.indices(shape[1:-1]).sum(axis=0)
    return np.broadcast_to((1 - 2 * (grids % 2))[None, ..., None], shape).astype("float32")


def write_noisy_pairs(path: str, n: int = 6, size: int = 32, sigma: float = 0.1, **extra) -> str:
    """Two independent noisy measurements of smooth scenes, with clean ones for scoring only."""
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        for split in ("train", "test"):
            clean = smooth_stack(rng, n, size, size)
            f[f"{split}_gt"] = clean
            for key in ("ns", "ns2"):
                f[f"{split}_{key}"] = clean + sigma * rng.standard_normal(clean.shape, "float32")
        for key, value in extra.items():
            f[key] = value
    return path


PHANTOM_SIZE = 64


def shepp_logan(size: int = PHANTOM_SIZE) -> np.ndarray:
    """A size x size Shepp-Logan slice in 1/pixel (line integrals up to about 0.8), zero
    outside the reconstruction circle."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import rescale

    image = (0.05 * rescale(shepp_logan_phantom(), size / 400, anti_aliasing=True)).astype("f4")
    yy, xx = np.mgrid[:size, :size] - size // 2
    image[yy**2 + xx**2 > (size // 2 - 1) ** 2] = 0
    return image


def half_turn(count: int) -> np.ndarray:
    """``count`` parallel-beam angles in degrees, uniform in [0, 180)."""
    return np.linspace(0, 180, count, endpoint=False)


def sinogram_of(image: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """(angles, W) line integrals of ``image``, as one detector row records them."""
    from skimage.transform import radon

    return radon(image, theta=angles, circle=True).T.astype(np.float32)


def write_projection_scan(path, image: np.ndarray, angles: int = 48, rows: int = 3,
                          theta: np.ndarray | bool | None = True) -> str:  # fmt: skip
    """A noise-free Data Exchange scan: ``rows`` identical detector rows of ``image``.

    Raw counts ``100 + 1e4 exp(-line)`` with flats (1e4 + 100) and darks (100), so
    flat/dark correction and ``-log`` give the line integrals back; ``theta`` True writes
    the half-turn's angles, None none, an array those.
    """
    angles_deg = half_turn(angles)
    line = sinogram_of(image, angles_deg)
    width = image.shape[-1]
    data = np.repeat((100.0 + 1e4 * np.exp(-line))[:, None, :], rows, axis=1)
    with h5py.File(path, "w") as f:
        f["exchange/data"] = data.astype(np.float32)
        f["exchange/data_white"] = np.full((2, rows, width), 1e4 + 100, np.float32)
        f["exchange/data_dark"] = np.full((2, rows, width), 100.0, np.float32)
        if theta is True:
            f["exchange/theta"] = angles_deg
        elif theta is not None:
            f["exchange/theta"] = theta
    return str(path)
