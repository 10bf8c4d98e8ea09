"""The projections of a Data Exchange file as an `ImageStack`, flat/dark corrected.

`open_dxchange` checks the file (`tomogan_tf.data.dxchange.inspect_dxchange`), fits
the `FlatDarkCorrection` from its median flat and dark frames, and returns a
`DxchangeStack` whose reads are corrected projections (transmission, or line integrals
with ``minus_log``), as training, the denoiser and evaluate all see them. It is an
`HDF5Stack` of ``/exchange/data``, so the same threading rules hold.

Example::

    with open_dxchange("scan.h5") as source:
        first = source.read([0])          # float32 (1, H, W) transmission
"""

from __future__ import annotations

import os

import numpy as np

from tomogan_tf.data.dxchange import DATA, DxchangeInfo, FlatDarkCorrection, inspect_dxchange
from tomogan_tf.data.hdf5 import H5_LOCK, open_h5
from tomogan_tf.data.sources.base import WHOLE
from tomogan_tf.data.sources.hdf5 import HDF5Stack
from tomogan_tf.data.sources.hdf5_direct import DirectReader


class DxchangeStack(HDF5Stack):
    """Flat/dark-corrected projections ``/exchange/data`` of a Data Exchange file.

    ``dtype`` is the raw projections' dtype; reads return corrected float32. ``info``
    is what the file holds (flats, darks, angles), ``correction`` the fitted
    correction, ``flat_field`` whether it divides by flat fields.
    """

    def __init__(self, path: str | os.PathLike, minus_log: bool = False):
        path = os.fspath(path)
        with H5_LOCK:
            f = open_h5(path)
            try:
                info = inspect_dxchange(f)
                correction = FlatDarkCorrection.from_file(f, info, minus_log)
                self._direct = DirectReader.of(f[DATA])
            finally:
                f.close()
        self.path, self.key = path, DATA
        self._file, self._owned, self._depth, self._fd = None, True, 0, None
        self.shape, self.dtype = info.shape, info.dtype
        self.single_image = info.single_projection
        self.info: DxchangeInfo = info
        self.correction: FlatDarkCorrection = correction

    @property
    def flat_field(self) -> bool:
        """Whether the file had flat fields (the correction divides by them)."""
        return self.info.n_flats > 0

    @property
    def minus_log(self) -> bool:
        return self.correction.minus_log

    def correct(self, raw: np.ndarray, region=WHOLE) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: Inf, reported
            return self.correction.apply(raw, region)

    def slice_name(self, index: int) -> str:
        return f"projection {index} of '{DATA}'"

    def describe(self) -> str:
        return f"dataset '{DATA}' (slices 0-{self.shape[0] - 1})"


def open_dxchange(path: str | os.PathLike, minus_log: bool = False) -> DxchangeStack:
    """Open, check and flat/dark-correct a Data Exchange file (see `DxchangeStack`).

    Usable as ``with open_dxchange(path) as source:`` (the file stays open inside) or
    without ``with`` (each read opens it).
    """
    return DxchangeStack(path, minus_log)
