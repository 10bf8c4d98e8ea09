"""Reading, checking, normalising and streaming image stacks.

`tomogan_tf.data.sources` reads every input format through one `ImageStack`
interface, `tomogan_tf.data.sinks` writes the outputs, `tomogan_tf.data.layouts` says
how a layout's files map to training/validation stacks, inputs and outputs, and
`tomogan_tf.data.pipeline` streams training patches out of stacks.
"""

from tomogan_tf.data.hdf5 import H5_LOCK, open_h5
from tomogan_tf.data.normalization import Normalizer, fit_normalizer
from tomogan_tf.data.pipeline import (
    StackReader,
    cube_dataset,
    neighbour_indices,
    patch_dataset,
    slice_dataset,
)
from tomogan_tf.data.sources import (
    ArrayStack,
    ImageStack,
    check_finite,
    file_format,
    open_dxchange,
    open_stack,
    scan_finite,
)
from tomogan_tf.data.stacks import check_aligned, check_min_size

__all__ = [
    "H5_LOCK",
    "ArrayStack",
    "ImageStack",
    "Normalizer",
    "StackReader",
    "check_aligned",
    "check_finite",
    "check_min_size",
    "cube_dataset",
    "file_format",
    "fit_normalizer",
    "neighbour_indices",
    "open_dxchange",
    "open_h5",
    "open_stack",
    "patch_dataset",
    "scan_finite",
    "slice_dataset",
]
