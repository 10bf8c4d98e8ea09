"""Opening and checking HDF5 stacks before any training starts.

Every check here raises `InputError` naming the file and the problem, so a user
with a misnamed dataset or a corrupt file gets one line instead of a traceback
from deep inside tf.data.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import h5py
import numpy as np

from tomogan_tf.errors import InputError

# Float stacks up to this size are scanned completely for NaN/Inf before training;
# larger ones (raw projection files reach hundreds of GB) are sampled, and the patch
# reader still checks every patch it reads.
FULL_SCAN_BYTES = 2 * 1024**3
SAMPLED_SLICES = 64

# Held by every reader thread for all of its h5py work, from opening the file to
# freeing the last h5py object. HDF5 serialises I/O anyway, and h5py deadlocks when
# one thread frees an h5py object (taking h5py's lock while holding the GIL) while
# another thread, inside a read, holds h5py's lock and waits for the GIL.
H5_LOCK = threading.RLock()


@dataclass(frozen=True)
class StackInfo:
    """Where a (N, H, W) stack lives and what it holds."""

    path: str
    key: str
    shape: tuple[int, int, int]
    dtype: np.dtype


def open_h5(path: str | os.PathLike) -> h5py.File:
    """Open an HDF5 file read-only, with a clear error for missing or corrupt files."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(path, "file not found")
    if os.path.isdir(path):
        raise InputError(path, "is a directory, expected an HDF5 file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise InputError(path, f"cannot read as HDF5 (corrupt or not HDF5: {err})") from None


def _list_datasets(f: h5py.File) -> list[str]:
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def find_dataset(f: h5py.File, key: str) -> h5py.Dataset:
    """``f[key]`` as a dataset; the error lists the datasets the file does have."""
    obj = f.get(key)
    if not isinstance(obj, h5py.Dataset):
        found = ", ".join(_list_datasets(f)[:20]) or "none"
        raise InputError(f.filename, f"dataset '{key}' not found (datasets in file: {found})")
    return obj


def check_numeric(path: str, what: str, dtype: np.dtype) -> None:
    """Raise unless ``dtype`` is an integer or floating type."""
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InputError(path, f"{what} has dtype {dtype}; expected integer or float")


def stack_info(f: h5py.File, key: str) -> StackInfo:
    """Check that ``key`` names a numeric (N, H, W) dataset in the open file ``f``."""
    path = f.filename
    obj = find_dataset(f, key)
    if obj.ndim != 3:
        raise InputError(
            path, f"dataset '{key}' has shape {obj.shape}; expected 3 dimensions (N, H, W)"
        )
    check_numeric(path, f"dataset '{key}'", obj.dtype)
    if min(obj.shape) == 0:
        raise InputError(path, f"dataset '{key}' is empty (shape {obj.shape})")
    return StackInfo(path, key, tuple(int(s) for s in obj.shape), obj.dtype)


def check_pair(
    f: h5py.File, noisy_key: str, clean_key: str, min_size: int = 1
) -> tuple[StackInfo, StackInfo]:
    """Check a noisy/clean pair of stacks: same shape, big enough, finite."""
    noisy, clean = stack_info(f, noisy_key), stack_info(f, clean_key)
    if noisy.shape != clean.shape:
        raise InputError(
            f.filename,
            f"'{noisy_key}' has shape {noisy.shape} but '{clean_key}' has shape {clean.shape};"
            " noisy and clean stacks must match slice for slice",
        )
    height, width = noisy.shape[1:]
    if min(height, width) < min_size:
        raise InputError(
            f.filename,
            f"images in '{noisy_key}' are {height}x{width}, smaller than the patch size {min_size}",
        )
    for info in (noisy, clean):
        check_finite(f, info.key)
    return noisy, clean


def check_finite(f: h5py.File, key: str) -> None:
    """Raise if a float stack holds NaN or Inf (fully scanned when small, sampled when huge)."""
    dset = f[key]
    if not np.issubdtype(dset.dtype, np.floating):
        return
    n = dset.shape[0]
    if dset.size * dset.dtype.itemsize <= FULL_SCAN_BYTES:
        indices = range(n)
    else:
        indices = np.unique(np.linspace(0, n - 1, SAMPLED_SLICES).astype(int))
    for i in indices:
        if not np.isfinite(read_slices(f, key, i, i + 1)).all():
            raise InputError(f.filename, f"dataset '{key}' has NaN or Inf values in slice {i}")


def read_slices(f: h5py.File, key: str, start: int, stop: int, region=np.s_[:, :]) -> np.ndarray:
    """Read slices [start, stop) of a stack (optionally a 2-D region) as float32."""
    try:
        return np.asarray(f[key][(slice(start, stop), *region)], dtype=np.float32)
    except OSError as err:
        raise InputError(f.filename, f"cannot read dataset '{key}' (corrupt file? {err})") from None
