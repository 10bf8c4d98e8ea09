"""Reading, checking, normalising and streaming image stacks.

`tomogan_tf.data.sources` reads every input format through one `ImageStack`
interface, `tomogan_tf.data.sinks` writes the outputs, `tomogan_tf.data.layouts` says
how a layout's files map to training/validation stacks, inputs and outputs, and
`tomogan_tf.data.pipeline` streams training patches out of stacks.
"""

from tomogan_tf.utils.lazy import lazy_exports

# Public name -> the module defining it, imported on first use (TensorFlow-free until then).
_EXPORTS = {
    "H5_LOCK": "tomogan_tf.data.hdf5",
    "open_h5": "tomogan_tf.data.hdf5",
    "Normalizer": "tomogan_tf.data.normalization",
    "fit_normalizer": "tomogan_tf.data.normalization",
    "StackReader": "tomogan_tf.data.pipeline",
    "cube_dataset": "tomogan_tf.data.pipeline",
    "neighbour_indices": "tomogan_tf.data.sources.base",
    "patch_dataset": "tomogan_tf.data.pipeline",
    "slice_dataset": "tomogan_tf.data.pipeline",
    "ArrayStack": "tomogan_tf.data.sources",
    "ImageStack": "tomogan_tf.data.sources",
    "check_finite": "tomogan_tf.data.sources",
    "file_format": "tomogan_tf.data.sources",
    "open_dxchange": "tomogan_tf.data.sources",
    "open_stack": "tomogan_tf.data.sources",
    "scan_finite": "tomogan_tf.data.sources",
    "check_aligned": "tomogan_tf.data.stacks",
    "check_min_size": "tomogan_tf.data.stacks",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
