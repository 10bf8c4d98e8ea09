"""Shared plumbing of the command-line tools: ``tomogan-<tool>`` or ``python -m tomogan_tf.<tool>``.

A tool module (`tomogan_tf.denoise`, ``evaluate``, ``export``, ``train``) holds a
``define_flags()``, an absl ``main(argv)`` and a ``run()`` (its console-script entry
point) that hands both to `run` here. Importing a tool does nothing: no flags are
defined (so several tools can be imported into one notebook or test process
without absl's ``DuplicateFlagError``) and TensorFlow is not imported. A running tool
defines and parses its flags and checks its input files before TensorFlow loads (a
typo in a path is reported in about a second), and TensorFlow loads, with its C++
start-up notices muted so that an error is one clear line on stderr, only when the
first module that needs it is imported. Library code never reaches into these modules;
they are thin shells around `tomogan_tf.inference`, `tomogan_tf.serving` and
`tomogan_tf.training`.
"""

from __future__ import annotations

import logging as pylogging
import os
import re
import signal
import sys
import traceback
import warnings
from collections.abc import Callable

from absl import flags

from tomogan_tf._quiet import mute_tensorflow_startup
from tomogan_tf.errors import InputError, WorkerLost

EXIT_BAD_INPUT = 2

# An InputError raised inside a tf.data reader reaches us wrapped in a TF error whose
# message carries the original "InputError: <text>" line.
_WRAPPED = re.compile(r"InputError: (.+)")

# Tools whose flags this process has defined (a second `run` of one reuses them).
_DEFINED: set[str] = set()


def run(
    main: Callable[[list[str]], None],
    prog: str,
    define_flags: Callable[[], None] | None = None,
    doc: str | None = None,
) -> None:
    """Run an absl ``main``; bad input becomes one line on stderr and exit code 2.

    In order: TensorFlow's start-up is set to run muted and to be followed by the
    tools' TensorFlow set-up (`_set_up_tensorflow`) whenever it loads, the tool's flags
    are defined (``define_flags``), absl parses the command line (``--help`` prints
    ``doc``, the tool module's docstring, and the tool's flags whichever way it was
    started) and ``main`` runs. None of this imports TensorFlow: ``main`` checks its
    inputs with TensorFlow-free code and imports the library parts that need it after.

    Failures leave through `os._exit`: a live tf.data iterator whose reader threads
    are inside Python can hang interpreter shutdown, and a tool that hangs after
    reporting an error, or after Ctrl-C, is worse than one that skips the clean-up
    (every file we write is complete and renamed into place before we get here).
    """
    from absl import app, logging

    mute_tensorflow_startup(after=_set_up_tensorflow)
    if define_flags is not None and prog not in _DEFINED:
        _define_main_module_flags(define_flags)
        _DEFINED.add(prog)
    main_module = sys.modules["__main__"]
    if doc and not main_module.__doc__:  # a console script: help as for python -m
        main_module.__doc__ = doc

    def guarded(argv: list[str]) -> None:
        logging.get_absl_handler().python_handler.addFilter(_only_our_info)
        warnings.formatwarning = _one_line_warning(prog)
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` cleans up like Ctrl-C
        try:
            main(argv)
        except InputError as err:
            _exit(EXIT_BAD_INPUT, f"{prog}: error: {err}")
        except WorkerLost as err:
            _exit(1, f"{prog}: error: {err}")
        except KeyboardInterrupt:
            _exit(130, f"{prog}: interrupted")
        except Exception as err:
            original = unwrap_input_error(err)
            if original is None:
                traceback.print_exc()
                _exit(1)
            _exit(EXIT_BAD_INPUT, f"{prog}: error: {original}")

    app.run(guarded, flags_parser=_flags_parser(prog))


PRECISION_HELP = (
    "Compute precision of the network: float32, or mixed bfloat16/float16 (weights and"
    " outputs stay float32). auto: a 16-bit policy where the CPU or GPU computes it natively"
    " and it costs the shipped model at most 0.05 dB on the held-out benchmark, float32"
    " elsewhere; the tool prints what it chose (bench/RESULTS.md: the speed and quality of each)."
)


def define_precision_flag(default: str = "auto", help_text: str = PRECISION_HELP) -> None:
    """``--precision``, shared by the tools that run a model."""
    from tomogan_tf.utils.precision import PRECISIONS

    flags.DEFINE_enum("precision", default, PRECISIONS, help_text)


def _define_main_module_flags(define_flags: Callable[[], None]) -> None:
    """Define a tool's flags as key flags of the main module, as absl's ``--help`` lists.

    absl's ``--help`` shows the flags of the module it finds as ``sys.argv[0]``: the
    tool module under ``python -m``, but the generated script under a console-script
    entry point, where the flags were defined by an imported module.
    """
    before = set(flags.FLAGS)
    define_flags()
    for name in flags.FLAGS:
        if name not in before:
            flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])


def _flags_parser(prog: str) -> Callable[[list[str]], list[str]]:
    """absl's flag parsing, with a bad flag reported like any other bad input.

    absl's own parser prints "FATAL Flags parsing error" and exits 1; a mistyped flag
    or value (``--precision fast``, ``--maxiter ten``) is bad input: one line, exit 2.
    """

    def parse(argv: list[str]) -> list[str]:
        try:
            return flags.FLAGS(argv)
        except flags.Error as err:
            message = " ".join(str(err).split())  # absl's suggestions span lines
            _exit(EXIT_BAD_INPUT, f"{prog}: error: {message} (--help lists the flags)")
            raise  # not reached: _exit leaves the process

    return parse


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


def _set_up_tensorflow(tf) -> None:
    """What the tools set once TensorFlow has loaded: Grappler by device, quiet logger."""
    from tomogan_tf.utils.graph import tune_graph_optimizer

    tune_graph_optimizer()
    tf.get_logger().setLevel(pylogging.WARNING)


def unwrap_input_error(err: BaseException) -> InputError | None:
    """The `InputError` a tf.data reader raised, recovered from the TF error wrapping it.

    None for anything that is not such a TensorFlow error.
    """
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(err, tf.errors.OpError):
        return None
    wrapped = _WRAPPED.search(err.message or "")
    return None if wrapped is None else InputError(None, wrapped.group(1).strip())


def check_no_arguments(argv: list[str]) -> None:
    """Refuse positional arguments (every input is a flag), as every tool does."""
    if len(argv) > 1:
        raise InputError(None, f"unexpected arguments: {' '.join(argv[1:])}")


def _exit(code: int, message: str | None = None) -> None:
    if message:
        print(message, file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
