"""A parallel-beam scan as sinograms: from a Data Exchange file or an HDF5 sinogram stack.

`ProjectionScan.open` checks everything a reconstruction needs before any is done (one
`InputError` naming the file and the problem): the projections, the angles, the flat and
dark fields for ``-log``, the centre inside the detector and enough angles for the splits.
`sinograms` then reads a band of detector rows across all the chosen angles, flat/dark
corrected to line integrals as `tomogan_tf.data.dxchange` does for denoising.

A sinogram stack is an HDF5 dataset (slices, angles, W) of line integrals with its angles
in degrees in a 1-D dataset beside it.
"""

from __future__ import annotations

from dataclasses import dataclass

import h5py
import numpy as np

from tomogan_tf.data.dxchange import DATA, THETA, FlatDarkCorrection, inspect_dxchange
from tomogan_tf.data.hdf5 import H5_LOCK, check_numeric, find_dataset, open_h5
from tomogan_tf.errors import InputError


@dataclass
class ProjectionScan:
    """The sinograms of an open file: ``rows`` slices of ``angles`` views, ``width`` wide.

    ``theta`` (degrees) and ``views`` (indices into the file's angles) are the chosen
    angles; ``centre`` is the rotation axis's detector column.
    """

    path: str
    file: h5py.File
    key: str
    dxchange: bool
    correction: FlatDarkCorrection | None
    theta: np.ndarray
    views: np.ndarray
    rows: int
    width: int
    centre: float

    @classmethod
    def open(
        cls,
        path: str,
        key: str | None = None,
        theta_key: str = "theta",
        views: np.ndarray | slice | None = None,
        centre: float | None = None,
        minus_log: bool = True,
        splits: int = 1,
    ) -> ProjectionScan:
        """Open a Data Exchange file (``key`` None) or the sinogram stack ``key`` of ``path``.

        ``views`` picks angles by index, or by a slice of them (default all); ``centre``
        defaults to the detector middle; ``splits`` is the number of disjoint angle
        subsets the caller will make, checked against the number of angles here.
        """
        f = open_h5(path)
        try:
            if key is None:
                scan = cls._dxchange(path, f, minus_log)
            else:
                scan = cls._sinograms(path, f, key, theta_key)
            theta_all, rows, width, correction, dxchange = scan
            n = len(theta_all)
            if views is None or isinstance(views, slice):
                picked = np.arange(n)[views or slice(None)]
            else:
                picked = np.asarray(views, dtype=np.int64)
            if picked.size == 0 or picked.min() < 0 or picked.max() >= n:
                raise InputError(path, f"the chosen angles are not within the file's {n}")
            if len(picked) < max(2, splits):
                needed = f"{splits} splits" if splits > 1 else "a reconstruction"
                raise InputError(path, f"{len(picked)} angles are too few for {needed}")
            if splits > 1 and len(picked) < 2 * splits:
                raise InputError(
                    path, f"{len(picked)} angles are too few for {splits} splits "
                    f"(each split needs at least 2)"
                )  # fmt: skip
            middle = width // 2 if centre is None else float(centre)
            if not 0 <= middle <= width - 1:
                raise InputError(
                    path, f"rotation centre {middle} is outside the detector (columns 0 to "
                    f"{width - 1})"
                )  # fmt: skip
            return cls(path, f, key or DATA, dxchange, correction, theta_all[picked], picked,
                       rows, width, middle)  # fmt: skip
        except BaseException:
            f.close()
            raise

    @staticmethod
    def _dxchange(path: str, f: h5py.File, minus_log: bool):
        info = inspect_dxchange(f)
        if info.theta is None:
            raise InputError(path, f"no angles: '{THETA}' is missing (needed to reconstruct)")
        correction = FlatDarkCorrection.from_file(f, info, minus_log=minus_log)
        _, rows, width = info.shape
        return info.theta, rows, width, correction, True

    @staticmethod
    def _sinograms(path: str, f: h5py.File, key: str, theta_key: str):
        with H5_LOCK:
            data = find_dataset(f, key)
            if data.ndim != 3:
                raise InputError(path, f"sinograms '{key}' have shape {data.shape}; "
                                 "expected (slices, angles, width)")  # fmt: skip
            check_numeric(path, f"sinograms '{key}'", data.dtype)
            if theta_key not in f:
                raise InputError(path, f"no angles: '{theta_key}' is missing beside '{key}'")
            theta = f[theta_key]
            if not isinstance(theta, h5py.Dataset) or theta.shape != (data.shape[1],):
                raise InputError(path, f"angles '{theta_key}' do not match the {data.shape[1]}"
                                 f" angles of '{key}'")  # fmt: skip
            rows, _, width = data.shape
            return np.asarray(theta[...], np.float64), rows, width, None, False

    @property
    def angles(self) -> int:
        return len(self.views)

    def sinograms(self, start: int, stop: int, views: np.ndarray | None = None) -> np.ndarray:
        """Line integrals (stop - start, angles, W) of detector rows ``start:stop``.

        ``views`` picks among the chosen angles by position (default: all of them).
        """
        picked = self.views if views is None else self.views[views]
        with H5_LOCK:
            data = self.file[self.key]
            try:
                raw = data[:, start:stop, :] if self.dxchange else data[start:stop]
            except OSError as err:
                problem = f"cannot read '{self.key}' (corrupt file? {err})"
                raise InputError(self.path, problem) from None
        if self.dxchange:
            block = self.correction.apply(raw[picked], np.s_[start:stop, :])
            block = np.ascontiguousarray(np.moveaxis(block, 1, 0))  # (rows, angles, W)
        else:
            block = np.asarray(raw[:, picked], np.float32)
        if not np.isfinite(block).all():
            raise InputError(self.path, f"NaN or Inf values in detector rows {start}-{stop - 1}")
        return block

    def close(self) -> None:
        self.file.close()

    def __enter__(self) -> ProjectionScan:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
