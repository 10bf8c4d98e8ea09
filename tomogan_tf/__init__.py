"""tomogan_tf: GAN and self-supervised denoising of scientific images in TensorFlow 2 / Keras 3.

Importing the package is cheap and changes nothing outside it: TensorFlow is not
imported, and neither ``os.environ`` nor the process's file descriptors are touched
(a notebook keeps TensorFlow's start-up messages, which the command-line tools
silence themselves before they import it). The public names below are loaded on
first use.

The one thing checked here is the Keras backend, read the way Keras reads it
(``KERAS_BACKEND``, else ``keras.json``) without importing Keras: every model, loss
and export of the package is TensorFlow code, so another backend would fail later
with errors far from the cause.

Example:
>>> import tomogan_tf                                          # doctest: +SKIP
>>> den = tomogan_tf.Denoiser.load(None)  # imports TensorFlow # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import sys

from tomogan_tf.utils.lazy import lazy_exports

__version__ = "0.1.0"

# Public name -> module that defines it, imported when the name is first used.
_LAZY = {
    "Denoiser": "tomogan_tf.inference",
    "build_discriminator": "tomogan_tf.models",
    "build_generator": "tomogan_tf.models",
}

# (`tomogan_tf.inference.evaluate` is not among them: ``tomogan_tf.evaluate`` is the
# command-line tool's module.)
__all__ = ["Denoiser", "__version__", "build_discriminator", "build_generator"]


def _configured_keras_backend() -> str:
    """The backend Keras will use (or uses), found as ``keras.src.backend.config`` does."""
    keras = sys.modules.get("keras")
    config = getattr(keras, "config", None)
    if config is not None and hasattr(config, "backend"):
        return config.backend()
    backend = "tensorflow"
    if "KERAS_HOME" in os.environ:
        keras_dir = os.environ["KERAS_HOME"]
    else:
        home = os.path.expanduser("~")
        keras_dir = os.path.join(home if os.access(home, os.W_OK) else "/tmp", ".keras")
    try:
        with open(os.path.expanduser(os.path.join(keras_dir, "keras.json"))) as f:
            backend = json.load(f).get("backend", backend)
    except (OSError, ValueError, AttributeError):
        pass  # no (readable) keras.json: Keras's default
    return os.environ.get("KERAS_BACKEND") or backend


def _check_keras_backend() -> None:
    backend = _configured_keras_backend()
    if backend != "tensorflow":
        raise ImportError(
            f"tomogan_tf needs the TensorFlow backend of Keras, but Keras is configured for"
            f" {backend!r} (KERAS_BACKEND or keras.json); set KERAS_BACKEND=tensorflow"
        )


_check_keras_backend()


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
