"""Data Exchange projection files (the APS / tomopy HDF5 layout): what they hold, and the
flat/dark correction of their projections.

A Data Exchange file holds raw projections ``/exchange/data`` (N, H, W), usually uint16
detector counts, with optional flat fields ``/exchange/data_white`` and dark fields
``/exchange/data_dark`` ((F, H, W) stacks or one (H, W) frame) and the angles
``/exchange/theta`` (N, usually degrees); other groups (``/measurement``, ``/process``, ...)
describe the experiment.

Denoising works on flat/dark-corrected projections: `open_dxchange`
(`tomogan_tf.data.sources.dxchange`) reads projections corrected by `FlatDarkCorrection`
(transmission, or line integrals with ``minus_log``), and `DxchangeSink`
(`tomogan_tf.data.sinks`) writes the denoised ones back in raw detector units into a
copy of the input file in which only ``/exchange/data`` is replaced, so tomopy
reconstructs the output exactly as it would the input. Both are importable from here.

Example (``model`` is any callable mapping a float32 batch to a batch of the same shape)::

    with open_dxchange("scan.h5") as source, DxchangeSink("scan_dn.h5", source) as sink:
        for start in range(0, source.shape[0], 8):
            indices = list(range(start, min(start + 8, source.shape[0])))
            sink.write(start, model(source.read(indices)))
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import h5py
import numpy as np

from tomogan_tf.data.hdf5 import H5_LOCK, check_numeric, find_dataset
from tomogan_tf.errors import InputError

__all__ = [
    "DARKS",
    "DATA",
    "DENOMINATOR_FLOOR",
    "FLATS",
    "THETA",
    "TRANSMISSION_FLOOR",
    "DxchangeInfo",
    "FlatDarkCorrection",
    "inspect_dxchange",
]

DATA = "exchange/data"
FLATS = "exchange/data_white"
DARKS = "exchange/data_dark"
THETA = "exchange/theta"

#: Flat-minus-dark denominators below this fraction of the median positive denominator are
#: raised to it. Such pixels are dead (flat == dark) or broken (flat < dark); without the
#: floor they would divide by ~0 and give Inf/NaN or transmissions of 1e6.
DENOMINATOR_FLOOR = 1e-2
#: Transmissions are clamped to at least this before ``-log`` (line integrals <= 13.8), so
#: photon-starved pixels (raw <= dark) give a large finite value instead of Inf/NaN.
TRANSMISSION_FLOOR = 1e-6
#: Flats and darks are read this many bytes (as float32) at a time for the median, so a
#: 50 x 2048 x 2048 flat stack never sits in memory whole.
BLOCK_BYTES = 64 * 1024**2

_F32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True)
class DxchangeInfo:
    """What a checked Data Exchange file holds.

    ``shape`` is always (N, H, W); ``single_projection`` marks a file whose
    ``/exchange/data`` is one (H, W) projection (then N = 1). ``theta`` is None when the
    file has no ``/exchange/theta``.
    """

    path: str
    shape: tuple[int, int, int]
    dtype: np.dtype
    n_flats: int
    n_darks: int
    theta: np.ndarray | None = field(default=None, compare=False)
    single_projection: bool = False


def _frame_stack(f: h5py.File, key: str, what: str, height: int, width: int) -> int:
    """Check flats or darks at ``key``; their frame count (0 when absent)."""
    path = f.filename
    obj = f.get(key)
    if obj is None:
        return 0
    if not isinstance(obj, h5py.Dataset):
        raise InputError(path, f"'{key}' ({what}) is a group, expected a dataset")
    if obj.ndim not in (2, 3):
        raise InputError(
            path, f"{what} '{key}' has shape {obj.shape}; expected (frames, H, W) or (H, W)"
        )
    check_numeric(path, f"{what} '{key}'", obj.dtype)
    if min(obj.shape) == 0:
        raise InputError(path, f"{what} '{key}' is empty (shape {obj.shape})")
    if tuple(obj.shape[-2:]) != (height, width):
        raise InputError(
            path,
            f"{what} '{key}' are {obj.shape[-2]}x{obj.shape[-1]} pixels but the projections "
            f"'{DATA}' are {height}x{width}",
        )
    if np.issubdtype(obj.dtype, np.floating):
        for _, block in _row_blocks(obj, path, key):
            if not np.isfinite(block).all():
                raise InputError(path, f"{what} '{key}' contain NaN or Inf values")
    return 1 if obj.ndim == 2 else int(obj.shape[0])


def inspect_dxchange(f: h5py.File) -> DxchangeInfo:
    """Check an open Data Exchange file up front, so a bad file fails before any denoising.

    Raises `InputError` naming the file and the one problem found.
    """
    path = f.filename
    with H5_LOCK:
        try:
            data = find_dataset(f, DATA)
        except InputError as err:
            raise InputError(path, f"not a Data Exchange file: {err.problem}") from None
        if data.ndim not in (2, 3):
            raise InputError(
                path,
                f"projections '{DATA}' have shape {data.shape}; expected (N, H, W) or one (H, W)",
            )
        check_numeric(path, f"projections '{DATA}'", data.dtype)
        if min(data.shape) == 0:
            raise InputError(path, f"projections '{DATA}' are empty (shape {data.shape})")
        single = data.ndim == 2
        shape = (1, *data.shape) if single else tuple(int(s) for s in data.shape)
        n, height, width = shape
        n_flats = _frame_stack(f, FLATS, "flat fields", height, width)
        n_darks = _frame_stack(f, DARKS, "dark fields", height, width)
        theta = None
        if THETA in f:
            obj = f[THETA]
            if not isinstance(obj, h5py.Dataset) or obj.ndim != 1:
                shape_text = getattr(obj, "shape", "a group")
                raise InputError(path, f"angles '{THETA}' are {shape_text}; expected 1-D (N,)")
            check_numeric(path, f"angles '{THETA}'", obj.dtype)
            if obj.shape[0] != n:
                raise InputError(
                    path, f"angles '{THETA}' have {obj.shape[0]} values for {n} projections"
                )
            theta = np.asarray(obj[...], dtype=np.float64)
    return DxchangeInfo(path, shape, data.dtype, n_flats, n_darks, theta, single)


def _row_blocks(dset: h5py.Dataset, path: str, key: str) -> Iterator[tuple[slice, np.ndarray]]:
    """(rows, float32 (F, rows, W) block) pieces of a frame stack, BLOCK_BYTES at a time."""
    frames = 1 if dset.ndim == 2 else dset.shape[0]
    height, width = dset.shape[-2:]
    step = max(1, BLOCK_BYTES // (4 * frames * width))
    for start in range(0, height, step):
        rows = slice(start, min(height, start + step))
        with H5_LOCK:
            try:
                block = dset[rows] if dset.ndim == 2 else dset[:, rows]
            except OSError as err:
                raise InputError(path, f"cannot read '{key}' (corrupt file? {err})") from None
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: Inf, reported
            block = np.asarray(block, dtype=np.float32)
        yield rows, block[None] if dset.ndim == 2 else block


def _median_frame(f: h5py.File, key: str) -> np.ndarray:
    """Per-pixel median over the frames at ``key``: one hot or dead frame cannot bias it."""
    dset = f[key]
    out = np.empty(dset.shape[-2:], np.float32)
    for rows, block in _row_blocks(dset, f.filename, key):
        if not np.isfinite(block).all():
            raise InputError(f.filename, f"'{key}' contains NaN or Inf values")
        out[rows] = np.median(block, axis=0)
    return out


@dataclass(frozen=True, eq=False)
class FlatDarkCorrection:
    """Flat/dark-field correction of raw projections, and its exact inverse.

    ``dark`` (H, W) is subtracted (zeros when the file has no darks). With ``flat``
    (H, W), the result is the transmission ``T = (raw - dark) / denominator``, where
    ``denominator = flat - dark`` raised to at least ``DENOMINATOR_FLOOR`` times its
    median positive value (dead or broken flat pixels). With ``minus_log``, the result is
    the line integral ``-log(max(T, TRANSMISSION_FLOOR))``. ``path`` names the file in
    errors.

    Example:
    >>> c = FlatDarkCorrection(np.full((1, 2), 10, np.float32), np.full((1, 2), 110, np.float32))
    >>> c.apply(np.array([[[60, 110]]])).tolist()
    [[[0.5, 1.0]]]
    """

    dark: np.ndarray
    flat: np.ndarray | None = None
    minus_log: bool = False
    path: str | None = None
    denominator: np.ndarray | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        dark = np.asarray(self.dark, dtype=np.float32)
        if dark.ndim != 2:
            raise InputError(self.path, f"dark field has shape {dark.shape}; expected (H, W)")
        object.__setattr__(self, "dark", dark)
        if self.flat is None:
            if self.minus_log:
                raise InputError(self.path, f"-log needs flat fields ({FLATS})")
            object.__setattr__(self, "denominator", None)
            return
        flat = np.asarray(self.flat, dtype=np.float32)
        if flat.shape != dark.shape:
            raise InputError(
                self.path, f"flat field has shape {flat.shape} but dark field {dark.shape}"
            )
        denom = flat - dark
        positive = denom[denom > 0]
        if positive.size == 0:
            raise InputError(self.path, "flat fields are nowhere brighter than dark fields")
        floor = np.float32(DENOMINATOR_FLOOR * np.median(positive))
        object.__setattr__(self, "flat", flat)
        object.__setattr__(self, "denominator", np.maximum(denom, floor))

    @classmethod
    def from_file(
        cls, f: h5py.File, info: DxchangeInfo, minus_log: bool = False
    ) -> FlatDarkCorrection:
        """The correction from the median flat and dark frames of an inspected file."""
        with H5_LOCK:
            if minus_log and not info.n_flats:
                raise InputError(info.path, f"-log needs flat fields ({FLATS})")
            dark = _median_frame(f, DARKS) if info.n_darks else np.zeros(info.shape[1:], "f4")
            flat = _median_frame(f, FLATS) if info.n_flats else None
        return cls(dark, flat, minus_log, info.path)

    def apply(self, raw: np.ndarray, region=np.s_[:, :]) -> np.ndarray:
        """Corrected float32 (k, h, w) of raw projections (k, h, w) cut at ``region`` of (H, W).

        >>> FlatDarkCorrection(np.ones((2, 2))).apply(np.full((1, 2, 2), 3)).tolist()
        [[[2.0, 2.0], [2.0, 2.0]]]
        """
        out = np.asarray(raw, dtype=np.float32) - self.dark[region]
        if self.denominator is None:
            return out
        out /= self.denominator[region]
        if self.minus_log:
            np.maximum(out, TRANSMISSION_FLOOR, out=out)
            np.log(out, out=out)
            np.negative(out, out=out)
        return out

    def invert(self, corrected: np.ndarray, region=np.s_[:, :]) -> np.ndarray:
        """Raw-unit float32 projections from corrected ones: the inverse of `apply`.

        Exact (to float32 rounding) except where `apply` clamped at TRANSMISSION_FLOOR;
        results beyond float32's range are clipped, never Inf.

        >>> c = FlatDarkCorrection(np.ones((1, 1)), np.full((1, 1), 5.0), minus_log=True)
        >>> round(float(c.invert(c.apply(np.full((1, 1, 1), 3)))[0, 0, 0]), 4)
        3.0
        """
        out = np.array(corrected, dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):
            if self.denominator is not None:
                if self.minus_log:
                    np.negative(out, out=out)
                    np.exp(out, out=out)
                out *= self.denominator[region]
            out += self.dark[region]
        return np.clip(out, -_F32_MAX, _F32_MAX, out=out)
