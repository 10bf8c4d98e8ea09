"""HDF5 basics shared by every reader and writer: the lock, opening, finding datasets.

Every check here raises `InputError` naming the file and the problem, so a user
with a misnamed dataset or a corrupt file gets one line instead of a traceback
from deep inside tf.data.
"""

from __future__ import annotations

import os
import threading

import h5py
import numpy as np

from tomogan_tf.errors import InputError

# Held by every reader thread for all of its h5py work, from opening the file to
# freeing the last h5py object. HDF5 serialises I/O anyway, and h5py deadlocks when
# one thread frees an h5py object (taking h5py's lock while holding the GIL) while
# another thread, inside a read, holds h5py's lock and waits for the GIL.
H5_LOCK = threading.RLock()


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


def list_datasets(f: h5py.File) -> list[str]:
    """Names of every dataset in ``f``, in visiting order."""
    names: list[str] = []
    f.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    return names


def find_dataset(f: h5py.File, key: str) -> h5py.Dataset:
    """``f[key]`` as a dataset; the error lists the datasets the file does have."""
    obj = f.get(key)
    if not isinstance(obj, h5py.Dataset):
        found = ", ".join(list_datasets(f)[:20]) or "none"
        raise InputError(f.filename, f"dataset '{key}' not found (datasets in file: {found})")
    return obj


def check_numeric(path: str, what: str, dtype: np.dtype) -> None:
    """Raise unless ``dtype`` is an integer or floating type."""
    if not (np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating)):
        raise InputError(path, f"{what} has dtype {dtype}; expected integer or float")
