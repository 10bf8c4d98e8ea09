"""Inference: tiled denoising of arrays and files, with any trained model."""

from tomogan_tf.inference.denoiser import Denoiser
from tomogan_tf.inference.io import SliceSink, SliceSource, open_source

__all__ = ["Denoiser", "SliceSink", "SliceSource", "open_source"]
