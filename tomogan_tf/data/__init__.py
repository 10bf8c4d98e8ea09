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
from tomogan_tf.data.stacks import Stack, check_aligned, check_min_size, open_stack

__all__ = [
    "Normalizer",
    "Stack",
    "StackInfo",
    "StackReader",
    "check_aligned",
    "check_min_size",
    "check_pair",
    "cube_dataset",
    "fit_normalizer",
    "neighbour_indices",
    "open_h5",
    "open_stack",
    "patch_dataset",
    "slice_dataset",
    "stack_info",
]
