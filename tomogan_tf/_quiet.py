"""Import TensorFlow without its C++ start-up notices on the terminal.

TensorFlow prints CUDA probing and oneDNN notices from C++ (outside Python's
logging) when it loads and when it first enumerates devices. For a command-line
tool whose errors are meant to be one clear line, that is noise, so the first
import and device scan run with file descriptor 2 pointed at /dev/null. A user who
sets TF_CPP_MIN_LOG_LEVEL explicitly sees everything TensorFlow says.

Only the command-line tools call this (`tomogan_tf.cli.run`, before anything imports
TensorFlow): it sets an environment variable and redirects a file descriptor, which
a library must not do to the process that imports it.
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
    """Import TensorFlow and scan devices with C++ notices muted (no-op if already done).

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` for the rest of the process; does nothing when
    TensorFlow is already imported or the variable is set.
    """
    if "tensorflow" in sys.modules or "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with _stderr_muted():
        import tensorflow as tf

        tf.config.list_physical_devices()
