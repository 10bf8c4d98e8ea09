"""Image stacks: one reading interface over every file format the package takes.

`ImageStack` is the protocol (``path``, ``key``, ``shape`` (N, H, W), stored ``dtype``,
``single_image``; `read` / `read_range` of corrected, finite float32, `describe`,
`subset`, `close`, ``with``). `open_stack` picks the implementation from the file
name (HDF5, TIFF, ``.npy``, DICOM); `open_dxchange` opens Data Exchange projections,
`ArrayStack` wraps an array in memory. `check_finite` is the one NaN/Inf check of
read data and `scan_finite` the up-front scan training does.
"""

from tomogan_tf.data.sources.base import (
    FULL_SCAN_BYTES,
    SAMPLED_SLICES,
    ImageStack,
    ShardView,
    StackView,
    check_finite,
    scan_finite,
)
from tomogan_tf.data.sources.dicom import DicomStack, is_dicom_input, open_dicom_series
from tomogan_tf.data.sources.dxchange import DxchangeStack, open_dxchange
from tomogan_tf.data.sources.formats import HDF5_SUFFIXES, file_format, open_stack
from tomogan_tf.data.sources.hdf5 import HDF5Stack, open_hdf5
from tomogan_tf.data.sources.memory import ArrayStack
from tomogan_tf.data.sources.npy import NpyStack
from tomogan_tf.data.sources.tiff import TIFF_SUFFIXES, TiffStack

__all__ = [
    "FULL_SCAN_BYTES",
    "HDF5_SUFFIXES",
    "SAMPLED_SLICES",
    "TIFF_SUFFIXES",
    "ArrayStack",
    "DicomStack",
    "DxchangeStack",
    "HDF5Stack",
    "ImageStack",
    "NpyStack",
    "ShardView",
    "StackView",
    "TiffStack",
    "check_finite",
    "file_format",
    "is_dicom_input",
    "open_dicom_series",
    "open_dxchange",
    "open_hdf5",
    "open_stack",
    "scan_finite",
]
