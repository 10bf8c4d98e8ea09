"""Shared plumbing of the command-line entry points (``python -m tomogan_tf.<tool>``)."""

from __future__ import annotations

import logging as pylogging
import os
import re
import signal
import sys
import traceback
import warnings
from collections.abc import Callable

import tensorflow as tf
from absl import app, logging

from tomogan_tf.errors import InputError

EXIT_BAD_INPUT = 2

# An InputError raised inside a tf.data reader reaches us wrapped in a TF error whose
# message carries the original "InputError: <text>" line.
_WRAPPED = re.compile(r"InputError: (.+)")


def run(main: Callable[[list[str]], None], prog: str) -> None:
    """Run an absl ``main``; bad input becomes one line on stderr and exit code 2.

    Failures leave through `os._exit`: a live tf.data iterator whose reader threads
    are inside Python can hang interpreter shutdown, and a tool that hangs after
    reporting an error, or after Ctrl-C, is worse than one that skips the clean-up
    (every file we write is complete and renamed into place before we get here).
    """

    def guarded(argv: list[str]) -> None:
        logging.get_absl_handler().python_handler.addFilter(_only_our_info)
        warnings.formatwarning = _one_line_warning(prog)
        tf.get_logger().setLevel(pylogging.WARNING)
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C
        try:
            main(argv)
        except InputError as err:
            _exit(EXIT_BAD_INPUT, f"{prog}: error: {err}")
        except tf.errors.OpError as err:
            original = unwrap_input_error(err)
            if original is None:
                traceback.print_exc()
                _exit(1)
            _exit(EXIT_BAD_INPUT, f"{prog}: error: {original}")
        except KeyboardInterrupt:
            _exit(130, f"{prog}: interrupted")
        except Exception:
            traceback.print_exc()
            _exit(1)

    app.run(guarded)


def _one_line_warning(prog: str):
    """Our own warnings (unmappable images, ...) as one stderr line, like our errors."""
    default = warnings.formatwarning

    def format(message, category, filename, lineno, line=None) -> str:
        if "tomogan_tf" in category.__module__:
            return f"{prog}: warning: {message}\n"
        return default(message, category, filename, lineno, line)

    return format


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _only_our_info(record: pylogging.LogRecord) -> bool:
    """Keep TensorFlow's INFO chatter (it logs through absl too) out of our tools' output."""
    return record.levelno >= pylogging.WARNING or "tomogan_tf" in record.pathname


def unwrap_input_error(err: tf.errors.OpError) -> InputError | None:
    """The `InputError` a tf.data reader raised, recovered from the TF error wrapping it."""
    wrapped = _WRAPPED.search(err.message or "")
    return None if wrapped is None else InputError(None, wrapped.group(1).strip())


def _exit(code: int, message: str | None = None) -> None:
    if message:
        print(message, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
