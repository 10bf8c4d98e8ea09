"""An array in memory as an `ImageStack`: what `Denoiser.__call__` streams."""

from __future__ import annotations

from typing import Any

import numpy as np

from tomogan_tf.data.sources.base import ImageStack, stack_shape
from tomogan_tf.errors import InputError


class ArrayStack(ImageStack):
    """An (N, H, W) stack or one (H, W) image held in memory; errors call it ``name``."""

    def __init__(self, array: np.ndarray, name: str = "input array"):
        if not hasattr(array, "dtype"):
            array = np.asarray(array)
        if array.ndim not in (2, 3):
            raise InputError(name, f"has shape {array.shape}; expected (H, W) or (N, H, W)")
        self.path = name
        self.shape, self.single_image = stack_shape(array.shape)
        self.dtype = np.dtype(array.dtype)
        self._array = array[None] if self.single_image else array

    def _read_raw(self, rows: slice | list[int], region: Any) -> np.ndarray:
        if isinstance(rows, slice):
            return np.asarray(self._array[(rows, *region)])
        return np.stack([np.asarray(self._array[i])[region] for i in rows])
