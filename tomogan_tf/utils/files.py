"""Writing files: never a half-written one, never over the input, in the dtype asked for."""

from __future__ import annotations

import json
import os
from typing import TypeVar

import numpy as np

from tomogan_tf.errors import InputError

_Sink = TypeVar("_Sink", bound="AtomicFileSink")


def write_json_atomic(data: dict, path: str) -> None:
    """Write ``data`` as JSON under a temporary name in the same folder, then rename."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def cast_output(data: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round and clip to an integer dtype's range; plain cast for floats."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(data), info.min, info.max).astype(dtype)
    return data.astype(dtype)


def same_file(a: str, b: str) -> bool:
    if os.path.exists(a) and os.path.exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


class AtomicFileSink:
    """Base of the output sinks: one file written under a temporary name, renamed when done.

    ``__init__`` refuses a directory, the input file itself (``input_path``, if given) and
    a missing folder, and names the temporary file ``.<name>.tmp-<pid><suffix>`` next to
    ``path``. Use as a context manager: leaving the block normally closes the file and
    renames it onto ``path``; an exception (or a failure while closing, such as a full
    disk) removes the temporary file and leaves any existing output untouched.

    Subclasses set ``shape``, ``dtype``, ``key`` and ``single_image``, and implement
    ``_open`` (create ``self.tmp``), ``write(start, data)`` and ``_close`` (release the
    file; safe to call when nothing, or only part, was opened). ``format`` is a class
    attribute, or what `_output_format` works out from the path.
    """

    format: str

    def __init__(self, path: str, input_path: str | None = None) -> None:
        if os.path.isdir(path):
            raise InputError(path, "is a directory; give an output file name")
        if input_path is not None and same_file(path, input_path):
            raise InputError(path, "is the input file; choose another output")
        self.path = path
        self.format = self._output_format(path)
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise InputError(path, f"output folder {directory} does not exist")
        base, suffix = os.path.splitext(os.path.basename(path))
        self.tmp = os.path.join(directory, f".{base}.tmp-{os.getpid()}{suffix}")

    def _output_format(self, path: str) -> str:
        return self.format

    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Sink) -> _Sink:
        try:
            self._open()
        except BaseException:
            self._discard()
            raise
        return self

    def _discard(self) -> None:
        try:
            self._close()
        finally:
            if os.path.exists(self.tmp):
                os.remove(self.tmp)

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._discard()
            return
        try:
            self._close()  # a failure here (disk full) must not publish a truncated file
            os.replace(self.tmp, self.path)
        except BaseException:
            if os.path.exists(self.tmp):
                os.remove(self.tmp)
            raise
