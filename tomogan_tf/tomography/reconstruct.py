"""Reconstructing a scan into the HDF5 slices the denoiser and the trainer read.

`reconstruct` streams a `ProjectionScan` through `fbp` a band of detector rows at a
time and writes, under a temporary name renamed when complete:

- ``recon`` (rows, W, W) float32: every chosen angle;
- with ``splits`` K > 1, ``split_0`` ... ``split_{K-1}``: each from its own disjoint,
  interleaved subset of the angles (`angle_splits`), for Noise2Inverse;
- ``geometry/theta`` (degrees) and ``geometry/split`` (the split of each angle), and
  attributes on each slice dataset: ``units`` (1/mm or 1/pixel), ``centre``,
  ``pixel_mm`` (0 when not given), ``angles``, ``source``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import h5py
import numpy as np

from tomogan_tf.tomography.fbp import angle_splits, fbp
from tomogan_tf.tomography.scan import ProjectionScan
from tomogan_tf.utils.files import atomic_path

FULL = "recon"
#: Noise2Inverse's reconstruction of a training scan, in the run directory.
CACHE_FILE = "n2i_reconstruction.h5"


def split_key(k: int) -> str:
    return f"split_{k}"


def reconstruct(
    scan: ProjectionScan,
    output: str,
    splits: int = 1,
    pixel_mm: float | None = None,
    batch: int = 8,
    progress: Callable[[str], None] | None = None,
    attrs: dict | None = None,
) -> list[str]:
    """Write the reconstruction of ``scan`` to ``output``; return the datasets written.

    ``attrs`` go on the file's root.
    """
    subsets = angle_splits(scan.angles, splits) if splits > 1 else []
    views = {FULL: np.arange(scan.angles)} | {split_key(k): v for k, v in enumerate(subsets)}
    shape = (scan.rows, scan.width, scan.width)
    units = "1/mm" if pixel_mm else "1/pixel"
    started = time.perf_counter()
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as f:
        f.attrs.update(attrs or {})
        split_of = np.zeros(scan.angles, np.int32)
        for k, subset in enumerate(subsets):
            split_of[subset] = k
        f["geometry/theta"], f["geometry/split"] = scan.theta, split_of
        out = {}
        for key, picked in views.items():
            out[key] = f.create_dataset(key, shape, np.float32, chunks=(1, *shape[1:]))
            out[key].attrs.update(units=units, centre=scan.centre, pixel_mm=pixel_mm or 0.0,
                                  angles=len(picked), source=scan.path)  # fmt: skip
        for start in range(0, scan.rows, batch):
            stop = min(scan.rows, start + batch)
            sinograms = scan.sinograms(start, stop)
            for key, picked in views.items():
                out[key][start:stop] = fbp(
                    sinograms[:, picked], scan.theta[picked], scan.centre, pixel_mm
                )
            if progress:
                seconds = time.perf_counter() - started
                progress(f"reconstructed slices {stop}/{scan.rows} ({seconds:.0f} s)")
    return list(views)


def cached_reconstruction(
    scan_path: str, workdir: str, splits: int, centre: float | None = None
) -> str:
    """``workdir``/`CACHE_FILE`: the K-split reconstruction of a Data Exchange scan, made
    on first use and reused while the scan file (path, size, time) and the settings
    are unchanged; a stale one is made again. Never written inside the input file.
    """
    from absl import logging

    stat = os.stat(scan_path)
    made_from = json.dumps(
        dict(source=os.path.abspath(scan_path), bytes=stat.st_size, mtime_ns=stat.st_mtime_ns,
             splits=int(splits), centre=None if centre is None else float(centre))
    )  # fmt: skip
    path = os.path.join(workdir, CACHE_FILE)
    if os.path.exists(path):
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("made_from") == made_from:
                    return path
        except OSError:
            pass  # unreadable: made again
        logging.info("%s is from another scan or settings: reconstructing again", path)
    os.makedirs(workdir, exist_ok=True)
    with ProjectionScan.open(scan_path, centre=centre, splits=splits) as scan:
        logging.info(
            "Noise2Inverse: reconstructing %d slices of %s from %d angles in %d splits -> %s",
            scan.rows, scan_path, scan.angles, splits, path,
        )  # fmt: skip
        reconstruct(scan, path, splits, progress=logging.info, attrs={"made_from": made_from})
    return path
