"""tomogan_tf: GAN and self-supervised denoising of scientific images in TensorFlow 2 / Keras 3."""

from tomogan_tf._quiet import import_tensorflow_quietly

import_tensorflow_quietly()

__version__ = "0.1.0"

from tomogan_tf.inference import Denoiser  # noqa: E402
from tomogan_tf.models import build_discriminator, build_generator  # noqa: E402

__all__ = ["Denoiser", "__version__", "build_discriminator", "build_generator"]
