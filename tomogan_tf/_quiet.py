"""Import TensorFlow without its C++ start-up notices on the terminal.

TensorFlow prints CUDA probing and oneDNN notices from C++ (outside Python's
logging) when it loads and when it first enumerates devices. For a command-line
tool whose errors are meant to be one clear line, that is noise, so the first
import and device scan run with file descriptor 2 pointed at /dev/null. A user who
sets TF_CPP_MIN_LOG_LEVEL explicitly sees everything TensorFlow says.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def _stderr_muted():
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    if "tensorflow" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with _stderr_muted():
        import tensorflow as tf

        tf.config.list_physical_devices()
