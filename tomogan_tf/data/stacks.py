"""What training reads: (N, H, W) stacks in HDF5 files, as float32 hyperslabs.

A `Stack` names one dataset, optionally a range of its slices (Data Exchange
projections hold out their last ones for validation) and a correction applied to
every read (flat/dark fields, ``-log``), so the readers, the normalisation fit and
the checks treat a plain reconstruction stack and a raw projection file alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import h5py
import numpy as np

from tomogan_tf.data.hdf5 import read_slices, stack_info
from tomogan_tf.errors import InputError

# raw (k, h, w) float32 of a region (two slices into H, W) -> corrected float32.
Correction = Callable[[np.ndarray, tuple], np.ndarray]


@dataclass(frozen=True)
class Stack:
    """Slices ``[start, start + shape[0])`` of dataset ``key`` in the HDF5 file ``path``.

    ``shape`` is that view's (N, H, W); `read` takes indices into the view.

    Example:
    >>> stack = Stack("data.h5", "train_ns", (64, 256, 256))  # doctest: +SKIP
    >>> stack.read(f, 3, 4, np.s_[0:32, 0:32]).shape          # doctest: +SKIP
    (1, 32, 32)
    """

    path: str
    key: str
    shape: tuple[int, int, int]
    start: int = 0
    correction: Correction | None = None

    def read(self, f: h5py.File, start: int, stop: int, region=np.s_[:, :]) -> np.ndarray:
        """Slices ``[start, stop)`` of the view, within ``region``, from the open file ``f``."""
        return self.correct(self.read_raw(f, start, stop, region), region)

    def read_raw(self, f: h5py.File, start: int, stop: int, region=np.s_[:, :]) -> np.ndarray:
        """`read` without the correction: the I/O part, for readers holding `H5_LOCK`."""
        return read_slices(f, self.key, self.start + start, self.start + stop, region)

    def correct(self, raw: np.ndarray, region=np.s_[:, :]) -> np.ndarray:
        """The correction of `read` applied to ``raw`` slices of ``region``."""
        return raw if self.correction is None else self.correction(raw, region)

    def describe(self) -> str:
        """How error messages name this stack."""
        n = self.shape[0]
        if self.start == 0 and self.correction is None:
            return f"dataset '{self.key}'"
        return f"dataset '{self.key}' (slices {self.start}-{self.start + n - 1})"

    def subset(self, start: int, stop: int) -> Stack:
        """The view of slices ``[start, stop)`` of this one."""
        return Stack(
            self.path,
            self.key,
            (stop - start, *self.shape[1:]),
            self.start + start,
            self.correction,
        )


def open_stack(f: h5py.File, key: str) -> Stack:
    """The whole (N, H, W) dataset ``key`` of the open file ``f``, checked (`stack_info`)."""
    info = stack_info(f, key)
    return Stack(f.filename, key, info.shape)


def check_aligned(noisy: Stack, target: Stack, what: str = "target") -> None:
    """Raise unless ``target`` matches ``noisy`` slice for slice (same N, H, W)."""
    if noisy.shape != target.shape:
        where = "" if noisy.path == target.path else f" in {target.path}"
        raise InputError(
            noisy.path,
            f"{noisy.describe()} has shape {noisy.shape} but the {what} {target.describe()}"
            f"{where} has shape {target.shape}; they must match slice for slice",
        )


def check_min_size(stack: Stack, min_size: int, what: str = "the patch size") -> None:
    """Raise if the images of ``stack`` are smaller than ``min_size`` on a side."""
    height, width = stack.shape[1:]
    if min(height, width) < min_size:
        raise InputError(
            stack.path,
            f"images in {stack.describe()} are {height}x{width}, smaller than {what} {min_size}",
        )
