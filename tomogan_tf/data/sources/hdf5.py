"""A dataset of an HDF5 file as an `ImageStack`, safe to read from tf.data's threads.

A dataset stored unfiltered (contiguous, as h5py writes by default and TomoGAN's files
are, or in uncompressed chunks) is read from the file's bytes by `DirectReader`,
without h5py: tf.data's reader threads then read in parallel. Anything else goes
through h5py, which deadlocks when one thread frees an h5py object while another
reads, so every h5py object here is created and freed under `H5_LOCK` (see
`tomogan_tf.data.hdf5`). Outside ``with`` a stack holds no file: each read opens the
file, reads its hyperslab and closes it again. Inside ``with`` the file stays open
between reads. Either way only the raw I/O is serialised; conversion, correction and
the finite check run after it, in parallel.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np

from tomogan_tf.data.hdf5 import H5_LOCK, check_numeric, find_dataset, open_h5
from tomogan_tf.data.sources.base import ImageStack, check_image_shape, pick, stack_shape
from tomogan_tf.data.sources.hdf5_direct import DirectReader, SharedFd
from tomogan_tf.errors import InputError


class HDF5Stack(ImageStack):
    """Dataset ``key`` of the HDF5 file ``path``: (N, H, W), or one (H, W) image.

    The dataset is checked on construction (present, numeric, non-empty, 2-D or 3-D;
    with ``require_stack`` exactly 3-D, as training needs). ``file`` reads through an
    HDF5 file the caller already holds open (and closes) instead of ``path``; once
    the caller has closed it, reads open ``path`` again.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        key: str,
        *,
        require_stack: bool = False,
        file: h5py.File | None = None,
    ):
        self.path, self.key = os.fspath(path), key
        self._file: h5py.File | None = file
        self._owned = file is None
        self._depth = 0
        self._fd: SharedFd | None = None
        with H5_LOCK:
            if file is None:
                with open_h5(self.path) as f:
                    shape, dtype = _inspect(f, key, require_stack)
                    self._direct = DirectReader.of(f[key])
            else:
                shape, dtype = _inspect(file, key, require_stack)
                self._direct = DirectReader.of(file[key])
        self.shape, self.single_image = stack_shape(shape)
        self.dtype = dtype

    @property
    def direct(self) -> bool:
        """Whether reads bypass h5py and its lock (an unfiltered dataset; see the module)."""
        return self._direct is not None

    @contextlib.contextmanager
    def _descriptor(self) -> Iterator[int]:
        """A descriptor of the file for one read: the stack's open one, else a new one."""
        shared = self._fd  # unless a close takes it first: then acquire() says so
        if shared is not None and shared.acquire():
            try:
                yield shared.fd
            finally:
                shared.release()
            return
        fd = os.open(self.path, os.O_RDONLY)
        try:
            yield fd
        finally:
            os.close(fd)

    def _read_direct(self, rows: slice | list[int], region: Any) -> np.ndarray:
        direct, box = self._direct, tuple(region)
        with self._descriptor() as fd:
            if len(direct.shape) == 2:
                block = direct.read(fd, box)[None]
                return block if isinstance(rows, slice) else block[[0] * len(rows)]
            if isinstance(rows, slice):
                return direct.read(fd, (rows, *box))
            unique = sorted(set(rows))
            if unique[-1] - unique[0] + 1 <= 2 * len(unique):  # nearly contiguous: one read
                block = direct.read(fd, (slice(unique[0], unique[-1] + 1), *box))
                return pick(block, unique[0], rows)
            return np.concatenate([direct.read(fd, (slice(i, i + 1), *box)) for i in rows])

    def _fetch(self, dset: h5py.Dataset, rows: slice | list[int], region: Any) -> np.ndarray:
        """Raw values of ``rows`` at ``region``; the caller holds `H5_LOCK`."""
        if dset.ndim == 2:
            block = dset[region][None]
            return block if isinstance(rows, slice) else block[[0] * len(rows)]
        if isinstance(rows, slice):
            return dset[(rows, *region)]
        unique = sorted(set(rows))
        if unique[-1] - unique[0] + 1 <= 2 * len(unique):  # nearly contiguous: one hyperslab
            block = dset[(slice(unique[0], unique[-1] + 1), *region)]
            return pick(block, unique[0], rows)
        block = dset[(unique, *region)]
        place = {i: k for k, i in enumerate(unique)}
        return block[[place[i] for i in rows]]

    def _read_raw(self, rows: slice | list[int], region: Any) -> np.ndarray:
        if self._direct is not None:
            try:
                return self._read_direct(rows, region)
            except OSError as err:
                raise InputError(
                    self.path, f"cannot read {self.describe()} (corrupt file? {err})"
                ) from None
        with H5_LOCK:
            if self._file is not None and not self._owned and not self._file.id.valid:
                self._file, self._owned = None, True  # the caller closed its file
            try:
                if self._file is not None:
                    return self._fetch(self._file[self.key], rows, region)
                with open_h5(self.path) as f:
                    return self._fetch(f[self.key], rows, region)
            except OSError as err:
                problem = f"cannot read {self.describe()} (corrupt file? {err})"
            except ValueError as err:
                problem = f"cannot read {self.describe()}: {err}"
        raise InputError(self.path, problem)

    def opened(self) -> HDF5Stack:
        """Itself: ``with`` keeps the file open, nested blocks close only the outermost."""
        return self

    def __enter__(self) -> HDF5Stack:
        with H5_LOCK:
            if self._file is not None and not self._owned and not self._file.id.valid:
                self._file, self._owned = None, True
            if self._file is None:
                self._file, self._owned = open_h5(self.path), True
            if self._direct is not None and self._fd is None:
                self._fd = SharedFd(self.path)
            self._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with H5_LOCK:
            self._depth -= 1
            if self._depth <= 0:
                self.close()

    def close(self) -> None:
        """Close the file if this stack opened it (a caller's ``file`` stays open)."""
        with H5_LOCK:
            self._depth = 0
            if self._file is not None and self._owned:
                self._file.close()
                self._file = None
            shared, self._fd = self._fd, None
            if shared is not None:
                shared.release()  # closed now, or by the last reader still inside a read


def _inspect(f: h5py.File, key: str, require_stack: bool) -> tuple[tuple[int, ...], np.dtype]:
    path = f.filename
    dataset = find_dataset(f, key or "")
    shape, dtype = tuple(int(s) for s in dataset.shape), dataset.dtype
    what = f"dataset '{key}'"
    if not require_stack:
        check_image_shape(path, what, shape, dtype)
        return shape, dtype
    if len(shape) != 3:
        raise InputError(path, f"{what} has shape {shape}; expected 3 dimensions (N, H, W)")
    check_numeric(path, what, dtype)
    if min(shape) == 0:
        raise InputError(path, f"{what} is empty (shape {shape})")
    return shape, dtype


def open_hdf5(path: str | os.PathLike, key: str, *, require_stack: bool = False) -> HDF5Stack:
    """Dataset ``key`` of ``path`` as a checked `HDF5Stack` (see there)."""
    return HDF5Stack(path, key, require_stack=require_stack)
