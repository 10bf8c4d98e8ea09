"""Image stacks on disk, read and written a batch of slices at a time.

Inputs and outputs are HDF5 datasets, TIFF files (one page per slice) or ``.npy``
arrays, holding a single image (H, W) or a stack (N, H, W). ``open_source`` also reads
a DICOM series (a folder of slices, see `tomogan_tf.inference.dicom`). Outputs are written
under a temporary name in the destination folder and renamed into place only when
complete, so an interrupted or failed run leaves nothing behind, and an output can
never replace its own input.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass

import h5py
import numpy as np

from tomogan_tf.data.hdf5 import H5_LOCK, check_numeric, find_dataset, open_h5
from tomogan_tf.errors import InputError
from tomogan_tf.utils.files import AtomicFileSink, cast_output

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".cxi")
TIFF_SUFFIXES = (".tif", ".tiff")


def file_format(path: str) -> str:
    """``"hdf5"``, ``"tiff"``, ``"npy"`` or ``"dicom"``, from the file name.

    DICOM is a folder (an existing one, or a name ending in ``/`` or without a suffix),
    a ``.dcm``/``.dicom`` file, or any file that starts with the DICOM preamble.
    """
    path = os.fspath(path)
    lower = path.lower()
    if not os.path.isdir(path):
        if lower.endswith(HDF5_SUFFIXES):
            return "hdf5"
        if lower.endswith(TIFF_SUFFIXES):
            return "tiff"
        if lower.endswith(".npy"):
            return "npy"
    from tomogan_tf.inference.dicom import is_dicom_path

    if is_dicom_path(path):
        return "dicom"
    raise InputError(
        path,
        "unknown file type; use .h5/.hdf5, .tif/.tiff, .npy or DICOM (a folder of slices or"
        " a .dcm file)",
    )


@dataclass
class SliceSource:
    """A readable stack: ``shape`` is (N, H, W); a single image is a stack of one."""

    path: str
    key: str | None
    shape: tuple[int, int, int]
    dtype: np.dtype
    single_image: bool
    _array: object

    def read(self, indices: list[int]) -> np.ndarray:
        """Slices ``indices`` as float32 (k, H, W), checked for NaN/Inf."""
        try:
            if isinstance(self._array, h5py.Dataset):
                with H5_LOCK:
                    unique = sorted(set(indices))
                    block = self._array[unique[0] : unique[-1] + 1]
                    data = block[[i - unique[0] for i in indices]]
            elif self.single_image:
                data = np.asarray(self._array)[None]
            elif hasattr(self._array, "asarray"):  # an open TiffFile: decode these pages only
                data = self._array.asarray(key=indices, series=0).reshape(-1, *self.shape[1:])
            else:
                data = np.stack([np.asarray(self._array[i]) for i in indices])
        except (OSError, ValueError) as err:
            raise InputError(self.path, f"cannot read slices {indices[0]}..: {err}") from None
        data = np.asarray(data, dtype=np.float32)
        if not np.isfinite(data).all():
            bad = indices[int(np.argmax(~np.isfinite(data).reshape(len(indices), -1).all(1)))]
            raise InputError(self.path, f"NaN or Inf values in slice {bad}")
        return data


def _check_image(path: str, what: str, shape: tuple[int, ...], dtype: np.dtype) -> None:
    if len(shape) not in (2, 3):
        raise InputError(path, f"{what} has shape {shape}; expected (H, W) or (N, H, W)")
    if min(shape) == 0:
        raise InputError(path, f"{what} is empty (shape {shape})")
    check_numeric(path, what, dtype)


def _load_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as err:
        raise InputError(path, f"cannot read as .npy: {err}") from None


def _open_tiff(path: str):
    """An open TiffFile holding one grey (Y, X) image or a stack of them, and its shape."""
    import tifffile

    try:
        tif = tifffile.TiffFile(path)
    except Exception as err:  # tifffile raises several types for broken files
        raise InputError(path, f"cannot read as TIFF: {err}") from None
    series = tif.series
    problem = None
    if len(series) != 1:
        problem = f"holds {len(series)} image series; expected one image or one stack"
    elif not series[0].axes.endswith("YX") or "S" in series[0].axes or "C" in series[0].axes:
        problem = f"has axes {series[0].axes}; expected grey images (YX), one per page"
    if problem:
        tif.close()
        raise InputError(path, problem)
    shape = tuple(series[0].shape)
    if len(shape) > 3:  # e.g. ImageJ TZYX: every page is one slice
        shape = (int(np.prod(shape[:-2])), *shape[-2:])
    return tif, shape, series[0].dtype


@contextmanager
def open_source(path: str, key: str | None = "test_ns"):
    """Open an image or stack for reading; yields a `SliceSource` (a `DicomSeries` for DICOM)."""
    fmt = file_format(path)
    if fmt == "dicom":
        from tomogan_tf.inference.dicom import open_dicom_series

        with open_dicom_series(path) as series:
            yield series
        return
    if fmt != "hdf5":
        if not os.path.isfile(path):
            raise InputError(path, "file not found")
        if fmt == "npy":
            array = _load_npy(path)
            _check_image(path, "image", array.shape, array.dtype)
            single = array.ndim == 2
            shape = (1, *array.shape) if single else tuple(array.shape)
            yield SliceSource(path, None, shape, array.dtype, single, array)
            return
        tif, shape, dtype = _open_tiff(path)
        try:
            _check_image(path, "image", shape, dtype)
            single = len(shape) == 2
            source = SliceSource(path, None, (1, *shape) if single else shape, dtype, single, tif)
            if single:
                source._array = tif.asarray(series=0)
            yield source
        finally:
            tif.close()
        return
    with H5_LOCK:
        f = open_h5(path)
    try:
        with H5_LOCK:
            dataset = find_dataset(f, key or "")
            _check_image(path, f"dataset '{key}'", dataset.shape, dataset.dtype)
            single = dataset.ndim == 2
            shape = (1, *dataset.shape) if single else tuple(dataset.shape)
            array = dataset[...] if single else dataset
        yield SliceSource(path, key, shape, dataset.dtype, single, array)
    finally:
        with H5_LOCK:
            f.close()


OUTPUT_DTYPES = ("float32", "float64", "float16", "uint16", "uint8", "int16", "input")


def output_dtype(name: str, input_dtype: np.dtype) -> np.dtype:
    """The dtype to write: ``name``, or the input's own with ``"input"``."""
    if name not in OUTPUT_DTYPES:
        raise InputError(None, f"unknown output dtype {name!r}; choose from {OUTPUT_DTYPES}")
    return np.dtype(input_dtype if name == "input" else name)


class SliceSink(AtomicFileSink):
    """Writes a stack slice batch by slice batch to a temporary file, then renames it.

    Use as a context manager: leaving the block normally commits the output, an
    exception removes the temporary file and leaves any existing output untouched.
    """

    def __init__(
        self,
        path: str,
        shape: tuple[int, int, int],
        dtype: np.dtype,
        key: str = "denoised",
        single_image: bool = False,
        attrs: dict | None = None,
    ):
        if not key:
            raise InputError(path, "the output dataset name (--output_key) is empty")
        super().__init__(path)
        self.shape, self.dtype, self.key = shape, np.dtype(dtype), key
        self.single_image = single_image
        self.attrs = attrs or {}
        self._handle = None
        self._target = None

    def _output_format(self, path: str) -> str:
        fmt = file_format(path)
        if fmt == "dicom":
            raise InputError(
                path, "is not a .h5, .tif or .npy name; DICOM series are written by DicomSeriesSink"
            )
        return fmt

    def _open(self) -> None:
        _, height, width = self.shape
        final_shape = (height, width) if self.single_image else self.shape
        if self.format == "hdf5":
            with H5_LOCK:
                self._handle = h5py.File(self.tmp, "w")
                # One slice per chunk, tiled for huge slices (HDF5 chunks must stay < 4 GB).
                chunks = None if self.single_image else (1, min(height, 2048), min(width, 2048))
                self._target = self._handle.create_dataset(
                    self.key, shape=final_shape, dtype=self.dtype, chunks=chunks
                )
                for name, value in self.attrs.items():
                    self._target.attrs[name] = value
        elif self.format == "npy":
            self._target = np.lib.format.open_memmap(
                self.tmp, mode="w+", dtype=self.dtype, shape=final_shape
            )
        else:
            import tifffile

            self._handle = tifffile.TiffWriter(self.tmp, bigtiff=self._bigtiff())

    def _bigtiff(self) -> bool:
        return int(np.prod(self.shape)) * self.dtype.itemsize > 2**31

    def write(self, start: int, data: np.ndarray) -> None:
        """Write slices ``start .. start + len(data)`` (k, H, W), in order."""
        data = cast_output(data, self.dtype)
        if self.format == "hdf5":
            with H5_LOCK:
                if self.single_image:
                    self._target[...] = data[0]
                else:
                    self._target[start : start + len(data)] = data
        elif self.format == "npy":
            if self.single_image:
                self._target[...] = data[0]
            else:
                self._target[start : start + len(data)] = data
        else:
            for image in data:
                self._handle.write(image, contiguous=True, photometric="minisblack")

    def _close(self) -> None:
        if self.format == "hdf5":
            with H5_LOCK:
                self._target = None
                if self._handle is not None:
                    self._handle.close()
        elif self.format == "npy":
            if self._target is not None:
                self._target.flush()
            self._target = None
        elif self._handle is not None:
            self._handle.close()
