"""Shared fixtures: small HDF5 stacks made on the fly."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import h5py
import numpy as np
import pytest

import tomogan_tf  # noqa: F401  (imports TensorFlow quietly before the tests do)

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


@pytest.fixture
def pair_file(tmp_path) -> str:
    return write_pair_file(str(tmp_path / "pairs.h5"))


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
