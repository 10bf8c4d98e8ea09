"""A ``.npy`` array as an `ImageStack`, memory-mapped: only the slices read are loaded."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from tomogan_tf.data.sources.base import ImageStack, check_image_shape, stack_shape
from tomogan_tf.errors import InputError


class NpyStack(ImageStack):
    """The (H, W) or (N, H, W) array of a ``.npy`` file."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise InputError(self.path, "file not found")
        try:
            array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as err:
            raise InputError(self.path, f"cannot read as .npy: {err}") from None
        check_image_shape(self.path, "image", array.shape, array.dtype)
        self.shape, self.single_image = stack_shape(array.shape)
        self.dtype = array.dtype
        self._array = array[None] if self.single_image else array

    def _read_raw(self, rows: slice | list[int], region: Any) -> np.ndarray:
        try:
            if isinstance(rows, slice):
                return np.asarray(self._array[(rows, *region)])
            return np.stack([np.asarray(self._array[i][region]) for i in rows])
        except (OSError, ValueError) as err:
            raise InputError(self.path, f"cannot read slices {rows}: {err}") from None
