"""Inference: denoising arrays and files of any size with any trained model, and scoring it.

`Denoiser` is the entry point (load a model, call it on arrays, stream files through
it); `evaluate` scores a model on held-out noisy/clean pairs. The parts it is made
of live in `loaders` (models on disk), `predict` (the network on raw-unit images:
normalisation, J-invariant inference, padding, tiles), `tiling` (blended tiles) and
`streaming` (2-D batches, 3-D slabs). Files are read and written by
`tomogan_tf.data.sources` and `tomogan_tf.data.sinks`.
"""

from tomogan_tf.utils.lazy import lazy_exports

# Public name -> the module defining it, imported on first use (TensorFlow-free until then).
_EXPORTS = {
    "Denoiser": "tomogan_tf.inference.denoiser",
    "evaluate": "tomogan_tf.inference.evaluation",
    "DEFAULT_MODEL": "tomogan_tf.inference.loaders",
    "METADATA_FILE": "tomogan_tf.inference.loaders",
    "TRAINED_DEFAULTS": "tomogan_tf.inference.loaders",
    "LoadedModel": "tomogan_tf.inference.loaders",
    "load_model": "tomogan_tf.inference.loaders",
    "locate_model": "tomogan_tf.inference.loaders",
    "ModelFile": "tomogan_tf.inference.loaders",
    "shipped_models_dir": "tomogan_tf.inference.loaders",
    "DEFAULT_TILE": "tomogan_tf.inference.predict",
    "INFERENCE": "tomogan_tf.choices",
    "MAX_MARGIN_3D": "tomogan_tf.inference.predict",
    "Predictor": "tomogan_tf.inference.predict",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TILE",
    "INFERENCE",
    "MAX_MARGIN_3D",
    "METADATA_FILE",
    "TRAINED_DEFAULTS",
    "Denoiser",
    "LoadedModel",
    "ModelFile",
    "Predictor",
    "evaluate",
    "load_model",
    "locate_model",
    "shipped_models_dir",
]
