"""The one image-stack interface every reader of the package goes through.

A stack is (N, H, W) images in any container (an HDF5 dataset, a TIFF, a ``.npy``,
an array in memory, a DICOM series, the projections of a Data Exchange file); a single
(H, W) image is a stack of one. Training, the denoiser and evaluate only ever call
`ImageStack.read` / `ImageStack.read_range`, which return float32, corrected
(flat/dark fields for Data Exchange, rescale slope/intercept for DICOM) and checked
for NaN/Inf by `check_finite`, the one such check of read data. Subclasses implement
only `ImageStack._read_raw` (and, if they correct, `ImageStack.correct`), so formats
differ in how they fetch bytes and in nothing else.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from tomogan_tf.errors import InputError

# Float stacks up to this size are scanned completely for NaN/Inf before training;
# larger ones (raw projection files reach hundreds of GB) are sampled, and the patch
# reader still checks every patch it reads.
FULL_SCAN_BYTES = 2 * 1024**3
SAMPLED_SLICES = 64

WHOLE = np.s_[:, :]  # the region of a whole (H, W) image


def neighbour_indices(index: int, n: int, depth: int) -> list[int]:
    """Indices of the ``depth`` slices centred on ``index``, mirrored about it at the ends.

    A neighbour past an end is replaced by the one as far on the other side of
    ``index``, so in a stack of at least ``depth`` slices no neighbour is the centre
    slice itself (Noise2Self hides the centre; a copy beside it would show it).
    Shorter stacks repeat slices (reflected at the ends).

    Example:
    >>> neighbour_indices(0, 10, 5), neighbour_indices(1, 10, 5)
    ([2, 1, 0, 1, 2], [3, 0, 1, 2, 3])
    """
    radius = depth // 2
    out = []
    for j in range(index - radius, index + radius + 1):
        if not 0 <= j < n:
            j = 2 * index - j
        if not 0 <= j < n:  # fewer than depth slices
            period = 2 * (n - 1)
            j = j % period if n > 1 else 0
            j = period - j if j >= n else j
        out.append(j)
    return out


class ImageStack(ABC):
    """Slices (N, H, W) read as corrected float32, any subset and region at a time.

    ``path`` names the file in errors (``"input array"`` in memory), ``key`` the
    dataset inside it (None where there is none), ``dtype`` is the stored one.
    Reads name a slice "slice i" (`slice_name`). A stack is a context manager:
    inside ``with`` a file-backed stack may keep its file open; ``close`` releases it.
    """

    path: str
    key: str | None = None
    shape: tuple[int, int, int]
    dtype: np.dtype
    single_image: bool = False

    # ---------------------------------------------------------------- for subclasses
    @abstractmethod
    def _read_raw(self, rows: slice | list[int], region: Any) -> np.ndarray:
        """Stored values (k, h, w) of ``rows`` (a ``start:stop`` slice, or indices in
        any order, checked to lie in the stack) cut at ``region`` of (H, W)."""
        raise NotImplementedError

    def correct(self, raw: np.ndarray, region: Any = WHOLE) -> np.ndarray:
        """The float32 values `read` returns for ``raw`` stored values of ``region``."""
        return np.asarray(raw, dtype=np.float32)

    def slice_name(self, index: int) -> str:
        """How a read's NaN/Inf error names slice ``index``."""
        return f"slice {index}"

    # ---------------------------------------------------------------- reading
    def read(
        self, indices: Sequence[int], region: Any = WHOLE, *, where: str | None = None
    ) -> np.ndarray:
        """Float32 (k, h, w) of slices ``indices`` (any order, repeats allowed) at ``region``.

        Corrected and checked finite; ``where`` (e.g. "near slice 3") names the slices
        in the NaN/Inf error as a caller sees them, instead of the first bad one.
        """
        indices = [int(i) for i in indices]
        n = self.shape[0]
        if not indices or min(indices) < 0 or max(indices) >= n:
            noun = self.slice_name(0).split()[0]
            raise InputError(self.path, f"{noun} indices {indices[:4]}.. outside 0..{n - 1}")
        data = self.correct(self._read_raw(indices, region), region)
        check_finite(data, self, indices if where is None else where)
        return data

    def read_range(
        self, start: int, stop: int, region: Any = WHOLE, *, where: str | None = None
    ) -> np.ndarray:
        """`read` of the contiguous slices ``[start, stop)``: one hyperslab, no gather."""
        start, stop = int(start), int(stop)
        n = self.shape[0]
        if not 0 <= start < stop <= n:
            noun = self.slice_name(0).split()[0]
            raise InputError(self.path, f"{noun}s {start}..{stop - 1} outside 0..{n - 1}")
        data = self.correct(self._read_raw(slice(start, stop), region), region)
        check_finite(data, self, list(range(start, stop)) if where is None else where)
        return data

    def neighbours(self, index: int, depth: int) -> list[int]:
        """The ``depth`` slices a model reads around slice ``index`` (`neighbour_indices`).

        Stacks whose slices are not one sequence (Noise2Inverse's held-out pairs,
        `tomogan_tf.data.sources.splits`) say here which slices are adjacent.
        """
        return neighbour_indices(index, self.shape[0], depth)

    # ---------------------------------------------------------------- naming, views
    def describe(self) -> str:
        """How error messages name this stack after its path: "dataset 'train_ns'"."""
        if self.key:
            return f"dataset '{self.key}'"
        return "the image" if self.single_image else "the stack"

    def subset(self, start: int, stop: int) -> ImageStack:
        """The view of slices ``[start, stop)`` (validation hold-outs)."""
        return StackView(self, int(start), int(stop))

    # ---------------------------------------------------------------- lifetime
    def opened(self) -> contextlib.AbstractContextManager:
        """A block of reads with the file kept open, closing only what it opened itself
        (HDF5 stacks outside ``with`` otherwise open their file per read)."""
        return contextlib.nullcontext(self)

    def close(self) -> None:
        """Release what the stack holds open (nothing, unless a subclass opens files)."""
        return None

    def __enter__(self) -> ImageStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        name = f"{self.path}:{self.key}" if self.key else self.path
        return f"<{type(self).__name__} {name} {self.shape} {self.dtype}>"


class StackView(ImageStack):
    """Slices ``[start, stop)`` of ``parent``, indexed from 0, read through the parent."""

    def __init__(self, parent: ImageStack, start: int, stop: int):
        n = parent.shape[0]
        if not 0 <= start < stop <= n:
            raise InputError(parent.path, f"slices {start}..{stop - 1} outside 0..{n - 1}")
        self.parent, self.start = parent, start
        self.path, self.key, self.dtype = parent.path, parent.key, parent.dtype
        self.shape = (stop - start, *parent.shape[1:])
        self.single_image = False

    def _read_raw(self, rows: slice | list[int], region: Any) -> np.ndarray:
        if isinstance(rows, slice):
            rows = slice(self.start + rows.start, self.start + rows.stop)
        else:
            rows = [self.start + i for i in rows]
        return self.parent._read_raw(rows, region)

    def correct(self, raw: np.ndarray, region: Any = WHOLE) -> np.ndarray:
        return self.parent.correct(raw, region)

    def slice_name(self, index: int) -> str:
        return self.parent.slice_name(self.start + index)

    def describe(self) -> str:
        stop = self.start + self.shape[0] - 1
        base = self.parent.describe().split(" (slices ")[0]
        return f"{base} (slices {self.start}-{stop})"

    def subset(self, start: int, stop: int) -> ImageStack:
        return StackView(self.parent, self.start + start, self.start + stop)

    def opened(self) -> contextlib.AbstractContextManager:
        return self.parent.opened()

    def close(self) -> None:
        pass  # the parent owns any open file

    def __enter__(self) -> StackView:
        self._held = self.parent.opened()
        self._held.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.__exit__(*exc)


class ShardView(StackView):
    """Slices ``[start, stop)`` of ``parent`` that keep the parent's neighbours.

    A model of ``--depth`` > 1 reads a slice's neighbours; at a shard's ends they lie
    in the next shards, and are read from there (and reflected only at the parent's
    own ends), so the slices of a shard denoised alone are those of the whole stack
    (``tomogan_tf.denoise --shard``).
    """

    def neighbours(self, index: int, depth: int) -> list[int]:
        return [j - self.start for j in self.parent.neighbours(self.start + index, depth)]

    def read(
        self, indices: Sequence[int], region: Any = WHOLE, *, where: str | None = None
    ) -> np.ndarray:
        return self.parent.read([self.start + int(i) for i in indices], region, where=where)

    def subset(self, start: int, stop: int) -> ImageStack:
        return ShardView(self.parent, self.start + start, self.start + stop)


def check_finite(data: np.ndarray, stack: ImageStack, where: str | Sequence[int]) -> None:
    """Raise `InputError` naming ``stack`` if ``data`` read from it holds NaN or Inf.

    ``where`` is either a phrase for the slices ``data`` holds ("near slice 3", "in slices
    4-7": "<describe> has NaN or Inf values near slice 3"), or their indices, one per
    row of ``data``: then the first bad one is named ("NaN or Inf values in slice 5").
    """
    if np.isfinite(data).all():
        return
    if isinstance(where, str):
        raise InputError(stack.path, f"{stack.describe()} has NaN or Inf values {where}")
    where = list(where)
    finite = np.isfinite(data).reshape(len(where), -1).all(axis=1)
    bad = where[int(np.argmin(finite))]
    raise InputError(stack.path, f"NaN or Inf values in {stack.slice_name(bad)}")


def scan_finite(stack: ImageStack) -> None:
    """Check a float stack for NaN/Inf before training: every slice when it is small
    (`FULL_SCAN_BYTES`), `SAMPLED_SLICES` evenly spaced ones when it is huge.

    Integer stacks are skipped (always finite). Slices are read one at a time, as
    training will, so a scan of a huge file stays in bounded memory.
    """
    if not np.issubdtype(stack.dtype, np.floating):
        return
    n = stack.shape[0]
    if int(np.prod(stack.shape)) * np.dtype(stack.dtype).itemsize <= FULL_SCAN_BYTES:
        indices = range(n)
    else:
        indices = np.unique(np.linspace(0, n - 1, SAMPLED_SLICES).astype(int))
    with stack.opened():
        for i in indices:
            stack.read_range(i, i + 1, where=f"in slice {i}")


def check_image_shape(path: str, what: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Raise unless ``shape``/``dtype`` make a numeric, non-empty (H, W) or (N, H, W) image."""
    from tomogan_tf.data.hdf5 import check_numeric

    if len(shape) not in (2, 3):
        raise InputError(path, f"{what} has shape {shape}; expected (H, W) or (N, H, W)")
    if min(shape) == 0:
        raise InputError(path, f"{what} is empty (shape {shape})")
    check_numeric(path, what, dtype)


def stack_shape(shape: tuple[int, ...]) -> tuple[tuple[int, int, int], bool]:
    """(N, H, W) of an (H, W) or (N, H, W) shape, and whether it was a single image."""
    shape = tuple(int(s) for s in shape)
    return ((1, *shape), True) if len(shape) == 2 else (shape, False)


def pick(block: np.ndarray, first: int, indices: list[int]) -> np.ndarray:
    """Rows ``indices`` of ``block``, which holds slices ``first, first + 1, ...``."""
    rows = [i - first for i in indices]
    if rows == list(range(rows[0], rows[0] + len(rows))):
        return block[rows[0] : rows[0] + len(rows)]
    return block[rows]
