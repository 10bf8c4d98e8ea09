"""A TIFF file (one grey page per slice, or one image) as an `ImageStack`.

Pages are decoded only when read, so a compressed stack larger than memory streams.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import numpy as np

from tomogan_tf.data.sources.base import ImageStack, check_image_shape, stack_shape
from tomogan_tf.errors import InputError

TIFF_SUFFIXES = (".tif", ".tiff")


class TiffStack(ImageStack):
    """The single image series of a TIFF file: grey (Y, X) pages, one per slice.

    The file stays open until `close` (a one-image file is decoded on opening).
    """

    def __init__(self, path: str | os.PathLike):
        import tifffile

        self.path = os.fspath(path)
        if not os.path.isfile(self.path):
            raise InputError(self.path, "file not found")
        try:
            tif = tifffile.TiffFile(self.path)
        except Exception as err:  # tifffile raises several types for broken files
            raise InputError(self.path, f"cannot read as TIFF: {err}") from None
        try:
            shape, dtype = _series_shape(self.path, tif)
            check_image_shape(self.path, "image", shape, dtype)
        except BaseException:
            tif.close()
            raise
        self.shape, self.single_image = stack_shape(shape)
        self.dtype = np.dtype(dtype)
        self._tif = tif
        self._lock = threading.Lock()  # a TiffFile is one file handle
        self._image = tif.asarray(series=0) if self.single_image else None

    def _read_raw(self, rows: slice | list[int], region: Any) -> np.ndarray:
        if isinstance(rows, slice):
            rows = list(range(rows.start, rows.stop))
        if self._image is not None:
            return self._image[region][None][[0] * len(rows)]
        if self._tif is None:
            raise InputError(self.path, "is closed")
        try:
            with self._lock:
                data = self._tif.asarray(key=rows, series=0)
        except (OSError, ValueError) as err:
            raise InputError(self.path, f"cannot read slices {rows[0]}..: {err}") from None
        return data.reshape(-1, *self.shape[1:])[(slice(None), *region)]

    def close(self) -> None:
        """Close the TIFF file."""
        if self._tif is not None:
            self._tif.close()
            self._tif = None


def _series_shape(path: str, tif) -> tuple[tuple[int, ...], np.dtype]:
    """The (Y, X) or (N, Y, X) shape of the one grey image series of ``tif``."""
    series = tif.series
    if len(series) != 1:
        raise InputError(path, f"holds {len(series)} image series; expected one image or one stack")
    axes = series[0].axes
    if not axes.endswith("YX") or "S" in axes or "C" in axes:
        hint = ""
        if "S" in axes and series[0].shape[axes.index("S")] in (3, 4):
            # tifffile stores an (N, H, W) array with N of 3 or 4 as RGB(A) by default
            hint = (
                " (colour samples: if these are 3 or 4 grey slices, write them with"
                " tifffile.imwrite(..., photometric='minisblack'))"
            )
        raise InputError(path, f"has axes {axes}; expected grey images (YX), one per page{hint}")
    shape = tuple(series[0].shape)
    if len(shape) > 3:  # e.g. ImageJ TZYX: every page is one slice
        shape = (int(np.prod(shape[:-2])), *shape[-2:])
    return shape, series[0].dtype
