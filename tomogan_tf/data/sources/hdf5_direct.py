"""Reading an unfiltered HDF5 dataset's bytes straight from the file, without h5py.

HDF5 serialises all I/O of a process behind one lock, so tf.data's reader threads
queue for it (681 patches/s of TomoGAN's training patches). But a dataset that is
stored contiguously (h5py's default, and TomoGAN's files), or in chunks without a
filter, is just arrays at known byte offsets. `DirectReader` learns those offsets once
through h5py and then reads any box of the dataset with ``os.pread``, which releases
the GIL and needs no lock, so readers run in parallel. Only the rows of a box are read
(one ``pread`` per plane of each chunk it covers), and nothing is mapped into the
process, so resident memory does not grow with the file as it would under ``mmap``.
Compressed (or otherwise filtered) datasets have no such layout and stay with h5py.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import h5py
import numpy as np

# Chunked datasets with more chunks than this keep h5py: the offset table would cost
# more memory and opening time than the lock-free reads save.
MAX_CHUNKS = 1_000_000


class ShortRead(OSError):
    """The file ends before the dataset's bytes do (a truncated file)."""


class SharedFd:
    """A read-only file descriptor that stays open until its owner and every reader are done.

    tf.data's reader threads may still be inside ``pread`` when the stack's ``with``
    block ends; closing the descriptor under them would make their reads fail (EBADF)
    or, once the number is reused, read another file. So the owner `release`s its
    reference, each reader `acquire`s one for the length of its read, and the last
    `release` closes the descriptor.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        self._users = 1  # the owner
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        """Take a reference; False once the descriptor is closed (open your own)."""
        with self._lock:
            if self._users == 0:
                return False
            self._users += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                os.close(self.fd)


class DirectReader:
    """Boxes of an (N, H, W) or (H, W) dataset read from its file's bytes.

    ``chunks`` is the storage block shape (the whole shape for contiguous storage) and
    ``offsets`` maps each stored block's corner to its byte offset; blocks never
    written read as ``fill``. `read` takes a file descriptor, so the caller decides
    how long a file stays open.
    """

    def __init__(self, dtype: np.dtype, shape, chunks, offsets: dict, fill: Any) -> None:
        self.dtype = np.dtype(dtype)
        self.shape = tuple(int(s) for s in shape)
        self.chunks = tuple(int(c) for c in chunks)
        self.offsets = offsets
        self.fill = fill

    @classmethod
    def of(cls, dataset: h5py.Dataset) -> DirectReader | None:
        """The reader of ``dataset`` if its bytes can be read directly, else None.

        That needs a plain file on disk (h5py's default driver), a native-endian numeric
        dtype, no external storage and no filters: contiguous storage with its space
        allocated, or chunks that are all stored unfiltered.
        """
        dtype = dataset.dtype
        if (
            dataset.file.driver != "sec2"
            or dtype.kind not in "iuf"
            or not dtype.isnative
            or dataset.external
            or dataset.ndim not in (2, 3)
            or dataset.size == 0
        ):
            return None
        fill = dataset.fillvalue
        if dataset.chunks is None:
            offset = dataset.id.get_offset()
            if offset is None:  # never written: no space allocated
                return None
            return cls(dtype, dataset.shape, dataset.shape, {(0,) * dataset.ndim: offset}, fill)
        if dataset.id.get_create_plist().get_nfilters():
            return None
        count = dataset.id.get_num_chunks()
        if count > MAX_CHUNKS:
            return None
        offsets = {}
        for i in range(count):
            info = dataset.id.get_chunk_info(i)
            if info.filter_mask or info.byte_offset is None:
                return None
            offsets[tuple(info.chunk_offset)] = int(info.byte_offset)
        return cls(dtype, dataset.shape, dataset.chunks, offsets, fill)

    def read(self, fd: int, box: tuple[slice, ...]) -> np.ndarray:
        """The values of ``box`` (one slice per axis, steps >= 1) read through ``fd``.

        A strided slice reads the rows its span covers and keeps every step-th, as
        h5py would (it, too, refuses negative steps).
        """
        bounds, steps = [], []
        for axis, n in zip(box, self.shape, strict=True):
            start, stop, step = axis.indices(n)
            if step < 1:
                raise ValueError("direct reads take slices with positive steps only")
            bounds.append((start, max(start, stop)))
            steps.append(slice(None, None, step))
        ranges = [range(a // c * c, b, c) for (a, b), c in zip(bounds, self.chunks, strict=True)]
        stored = [(corner, self.offsets.get(corner)) for corner in _product(ranges)]
        shape = [b - a for a, b in bounds]
        if all(offset is not None for _, offset in stored):  # every value is read below
            out = np.empty(shape, self.dtype)
        else:
            out = np.full(shape, self.fill, self.dtype)
        if out.size == 0:
            return out[tuple(steps)]
        for corner, offset in stored:
            if offset is not None:
                self._read_block(fd, offset, corner, bounds, out)
        return out[tuple(steps)] if any(s.step != 1 for s in steps) else out

    def _read_block(self, fd, offset, corner, bounds, out) -> None:
        """Copy the part of the stored block at ``corner`` that ``bounds`` covers into ``out``.

        A block is C-ordered, so rows ``lo..hi`` of one plane are one run of bytes:
        one ``preadv`` each, straight into ``out`` when the box spans the block's
        width, else into a buffer that is cut to the box's columns.
        """
        inside = [(max(a, c0) - c0, min(b, c0 + c) - c0) for (a, b), c0, c in
                  zip(bounds, corner, self.chunks, strict=True)]  # fmt: skip
        (y0, y1), (x0, x1) = inside[-2:]
        height, width = self.chunks[-2:]
        item = self.dtype.itemsize
        leading = inside[:-2]
        for plane in _product([range(a, b) for a, b in leading]):
            flat = 0
            for p, c in zip(plane, self.chunks[:-2], strict=True):
                flat = flat * c + p
            start = offset + ((flat * height + y0) * width) * item
            target = tuple(p + c0 - a for p, c0, (a, _) in zip(plane, corner, bounds, strict=False))
            ty = slice(y0 + corner[-2] - bounds[-2][0], y1 + corner[-2] - bounds[-2][0])
            tx = slice(x0 + corner[-1] - bounds[-1][0], x1 + corner[-1] - bounds[-1][0])
            view = out[(*target, ty, tx)]
            whole_rows = x1 - x0 == width and view.flags.c_contiguous
            rows = view if whole_rows else np.empty((y1 - y0, width), self.dtype)
            done = os.preadv(fd, [rows], start)  # into the array, no bytes object
            if done != rows.nbytes:
                raise ShortRead(f"the file ends inside the dataset (byte {start + done})")
            if not whole_rows:
                view[...] = rows[:, x0:x1]


def _product(ranges: list[range]):
    """Every tuple of one value from each range, in C order (() for no ranges)."""
    if not ranges:
        yield ()
        return
    for head in ranges[0]:
        for tail in _product(ranges[1:]):
            yield (head, *tail)
