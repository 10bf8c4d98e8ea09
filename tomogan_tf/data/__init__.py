"""Reading, checking, normalising and streaming HDF5 image stacks."""

from tomogan_tf.data.hdf5 import StackInfo, check_pair, open_h5, stack_info
from tomogan_tf.data.normalization import Normalizer, fit_normalizer
from tomogan_tf.data.pipeline import (
    StackReader,
    cube_dataset,
    neighbour_indices,
    patch_dataset,
    slice_dataset,
)

__all__ = [
    "Normalizer",
    "StackInfo",
    "StackReader",
    "check_pair",
    "cube_dataset",
    "fit_normalizer",
    "neighbour_indices",
    "open_h5",
    "patch_dataset",
    "slice_dataset",
    "stack_info",
]
