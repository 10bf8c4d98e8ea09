"""Writing files: never a half-written one, never over the input, in the dtype asked for.

Every output of the package (models, checkpoints' companions, JSON, denoised stacks,
DICOM series, SavedModels, generated datasets) is written under a temporary sibling
name by `atomic_path` and renamed onto its final name only when complete. A process
killed half-way leaves its temporary behind; the next writer of the same output
removes those whose process is gone, so they never pile up.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from typing import TypeVar

import numpy as np

from tomogan_tf.errors import InputError

_Sink = TypeVar("_Sink", bound="AtomicFileSink")


def temporary_name(path: str) -> str:
    """``.<name>.tmp-<pid><suffix>`` beside ``path`` (the suffix kept: savers check it)."""
    directory, name = os.path.split(os.path.abspath(path))
    base, suffix = os.path.splitext(name)
    return os.path.join(directory, f".{base}.tmp-{os.getpid()}{suffix}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove(path: str) -> None:
    """Remove a file or a folder tree, if it is there."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def remove_stale_temporaries(path: str) -> list[str]:
    """Remove temporaries of ``path`` left by processes that no longer run; return them.

    Our own process id is treated as stale too: an earlier process with the same id
    is long gone, and this process is about to write a fresh one.
    """
    directory, name = os.path.split(os.path.abspath(path))
    base, suffix = os.path.splitext(name)
    pattern = re.compile(rf"\.{re.escape(base)}\.tmp-(\d+){re.escape(suffix)}(\.old)?$")
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(directory):
            match = pattern.fullmatch(entry)
            if match and (int(match.group(1)) == os.getpid() or not _alive(int(match.group(1)))):
                remove(os.path.join(directory, entry))
                removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(path: str, replace_dir: bool = False) -> Iterator[str]:
    """Yield a temporary name beside ``path``; rename it onto ``path`` when the block ends.

    An exception (or a failure in the rename) removes the temporary and leaves any
    existing ``path`` untouched. The temporary may be a file or a folder. A folder
    already at ``path`` is replaced only with ``replace_dir`` (moved aside, then
    deleted once the new one is in place).
    """
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    try:
        yield tmp
        if replace_dir and os.path.isdir(path) and not os.path.islink(path):
            old = f"{tmp}.old"
            os.rename(path, old)
            try:
                os.rename(tmp, path)
            except BaseException:
                os.rename(old, path)
                raise
            remove(old)
        else:
            os.replace(tmp, path)
    finally:
        remove(tmp)


def write_json_atomic(data: dict, path: str) -> None:
    """Write ``data`` as JSON under a temporary name in the same folder, then rename."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")


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


def check_output(output: str, input_path: str, overwrite: bool, flag: str = "--output") -> None:
    """Refuse an output that is the input, or that exists without ``overwrite``: the
    tools' check before any work is done."""
    if same_file(input_path, output):
        raise InputError(output, f"is the input file; choose another {flag}")
    if os.path.exists(output) and not overwrite:
        raise InputError(output, "exists; pass --overwrite to replace it")


class AtomicFileSink:
    """Base of the output sinks: one file written under `atomic_path`, renamed when done.

    ``__init__`` refuses a directory, the input file itself (``input_path``, if given) and
    a missing folder. Use as a context manager: leaving the block normally closes the
    file and renames it onto ``path``; an exception (or a failure while closing, such
    as a full disk) removes the temporary file and leaves any existing output untouched.

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
        self.tmp = temporary_name(path)
        self._atomic: contextlib.AbstractContextManager | None = None

    def _output_format(self, path: str) -> str:
        return self.format

    def _open(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    def __enter__(self: _Sink) -> _Sink:
        self._atomic = atomic_path(self.path)
        self.tmp = self._atomic.__enter__()
        try:
            self._open()
        except BaseException as err:
            self._leave(err)
            raise
        return self

    def _leave(self, err: BaseException | None) -> None:
        atomic, self._atomic = self._atomic, None
        try:
            self._close()  # a failure here (disk full) must not publish a truncated file
        except BaseException as close_err:
            atomic.__exit__(type(close_err), close_err, close_err.__traceback__)
            raise
        if err is None:
            atomic.__exit__(None, None, None)
        else:
            atomic.__exit__(type(err), err, err.__traceback__)

    def __exit__(self, exc_type, exc, tb) -> None:
        self._leave(exc)
