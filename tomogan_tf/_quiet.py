"""Import TensorFlow without its C++ start-up notices on the terminal, whenever it loads.

TensorFlow prints CUDA probing and oneDNN notices from C++ (outside Python's
logging) when it loads and when it first enumerates devices, even at
``TF_CPP_MIN_LOG_LEVEL=2``. For a command-line tool whose errors are meant to be one
clear line, that is noise, so the first import and device scan run with file
descriptor 2 pointed at /dev/null. A user who sets TF_CPP_MIN_LOG_LEVEL explicitly
sees everything TensorFlow says.

The tools do not import TensorFlow up front: they check their flags and input files
first (a typo in ``--h5`` is reported in a second, not after TensorFlow's start-up),
and TensorFlow loads when the first module that needs it is imported.
`mute_tensorflow_startup` therefore wraps TensorFlow's own module loader, so that
*its* import, wherever it happens, runs muted and is followed by the tool's set-up.

Only the command-line tools call this (`tomogan_tf.cli.run`): it sets an environment
variable, hooks the import system and redirects a file descriptor, which a library
must not do to the process that imports it.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import os
import sys
from collections.abc import Callable
from types import ModuleType


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


class _MutedLoader(importlib.abc.Loader):
    """TensorFlow's loader, run with stderr muted and followed by ``after(tensorflow)``."""

    def __init__(self, loader: importlib.abc.Loader, mute: bool, after: Callable) -> None:
        self._loader, self._mute, self._after = loader, mute, after

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        with _stderr_muted() if self._mute else contextlib.nullcontext():
            self._loader.exec_module(module)
            module.config.list_physical_devices()
        self._after(module)

    def __getattr__(self, name: str):  # resource readers and the like
        return getattr(self._loader, name)


class _OnTensorFlowImport(importlib.abc.MetaPathFinder):
    """Finds ``tensorflow`` once, through the other finders, and wraps its loader."""

    def __init__(self, mute: bool, after: Callable) -> None:
        self._mute, self._after = mute, after

    def find_spec(self, name, path=None, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)  # one-shot; the search below must not find us again
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _MutedLoader(spec.loader, self._mute, self._after)
        return spec


def mute_tensorflow_startup(after: Callable[[ModuleType], None] = lambda tf: None) -> None:
    """Mute TensorFlow's start-up when it loads, then call ``after(tensorflow)``.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` for the rest of the process unless the user set
    it (then nothing is muted). If TensorFlow is already imported, ``after`` runs now.
    """
    if "tensorflow" in sys.modules:
        after(sys.modules["tensorflow"])
        return
    mute = "TF_CPP_MIN_LOG_LEVEL" not in os.environ
    if mute:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    if not any(isinstance(f, _OnTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _OnTensorFlowImport(mute, after))


def import_tensorflow_quietly() -> None:
    """Import TensorFlow now, with its start-up notices muted (no-op if already imported)."""
    mute_tensorflow_startup()
    import tensorflow  # noqa: F401
