"""Which `ImageStack` a file name asks for: `file_format` and `open_stack`."""

from __future__ import annotations

import os

import h5py

from tomogan_tf.data.sources.base import ImageStack
from tomogan_tf.data.sources.tiff import TIFF_SUFFIXES
from tomogan_tf.errors import InputError

HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs", ".cxi")


def file_format(path: str | os.PathLike) -> str:
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
    from tomogan_tf.data.sources.dicom import is_dicom_path

    if is_dicom_path(path):
        return "dicom"
    raise InputError(
        path,
        "unknown file type; use .h5/.hdf5, .tif/.tiff, .npy or DICOM (a folder of slices or"
        " a .dcm file)",
    )


def open_stack(path: str | os.PathLike | h5py.File, key: str | None = "test_ns") -> ImageStack:
    """The image or stack at ``path``, by file format: dataset ``key`` of an HDF5 file,
    a TIFF, a ``.npy``, or a DICOM series (a folder of slices, or one ``.dcm`` file).

    Checked on opening. Use as ``with open_stack(...) as stack:`` to keep the file
    open between reads, or without ``with`` (HDF5 then opens the file per read, which
    tf.data's reader threads need). ``path`` may also be an open `h5py.File` (the old
    training form, e.g. for in-memory files): ``key`` must then be a 3-D stack, reads go
    through the file while it is open, and the caller closes it.
    """
    from tomogan_tf.data.sources.hdf5 import HDF5Stack

    if isinstance(path, h5py.File):
        return HDF5Stack(path.filename, key or "", require_stack=True, file=path)
    fmt = file_format(path)
    if fmt == "hdf5":
        return HDF5Stack(path, key or "")
    if fmt == "npy":
        from tomogan_tf.data.sources.npy import NpyStack

        return NpyStack(path)
    if fmt == "tiff":
        from tomogan_tf.data.sources.tiff import TiffStack

        return TiffStack(path)
    from tomogan_tf.data.sources.dicom import open_dicom_series

    return open_dicom_series(path)
