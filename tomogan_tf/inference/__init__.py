"""Inference: denoising arrays and files of any size with any trained model, and scoring it.

`Denoiser` is the entry point (load a model, call it on arrays, stream files through
it); `evaluate` scores a model on held-out noisy/clean pairs. The parts it is made
of live in `loaders` (models on disk), `predict` (the network on raw-unit images:
normalisation, J-invariant inference, padding, tiles), `tiling` (blended tiles) and
`streaming` (2-D batches, 3-D slabs). Files are read and written by
`tomogan_tf.data.sources` and `tomogan_tf.data.sinks`.
"""

from tomogan_tf.inference.denoiser import Denoiser
from tomogan_tf.inference.evaluation import evaluate
from tomogan_tf.inference.loaders import (
    DEFAULT_MODEL,
    METADATA_FILE,
    TRAINED_DEFAULTS,
    LoadedModel,
    load_model,
    shipped_models_dir,
)
from tomogan_tf.inference.predict import DEFAULT_TILE, INFERENCE, MAX_MARGIN_3D, Predictor

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TILE",
    "INFERENCE",
    "MAX_MARGIN_3D",
    "METADATA_FILE",
    "TRAINED_DEFAULTS",
    "Denoiser",
    "LoadedModel",
    "Predictor",
    "evaluate",
    "load_model",
    "shipped_models_dir",
]
