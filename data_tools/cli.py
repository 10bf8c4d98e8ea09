"""Command-line plumbing shared by the data_tools generators, so they all behave alike.

Each generator module (``python -m data_tools.make_ct_dataset`` and friends) only defines
its absl flags, the keyword names it hands to its library function and its summary line;
this module does the rest the same way for all of them:

* a bad flag, a stray argument, a missing ``--out`` or a `CTDatasetError` is one
  ``<prog>: error: ...`` line on stderr and exit status 2 (absl alone would exit 1 with
  a usage dump);
* SIGTERM unwinds like Ctrl-C, so temporary outputs are removed (``atomic_path``);
* progress is keras' ``Progbar`` when stdout is a terminal, as in tomogan_tf's own tools,
  and nothing otherwise; the one-line summary is printed to stdout at the end.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from data_tools.errors import CTDatasetError

__all__ = ["Progress", "parse_flags", "run_main", "run_program"]


# keras' Progbar class and the seconds its first import took (keras loads TensorFlow)
_PROGBAR: dict[str, Any] = {}


def _progbar_class() -> type:
    """keras' Progbar, importing keras (and TensorFlow) on first use only."""
    if "class" not in _PROGBAR:
        start = time.monotonic()
        # TensorFlow first without its C++ start-up notices, as tomogan_tf's tools do, so
        # a terminal shows the bar and nothing else
        from tomogan_tf._quiet import import_tensorflow_quietly

        import_tensorflow_quietly()
        import keras

        _PROGBAR["class"] = keras.utils.Progbar
        _PROGBAR["seconds"] = time.monotonic() - start
    return _PROGBAR["class"]


class Progress:
    """Progress of a generator run: keras' ``Progbar`` if ``enabled``, else nothing.

    The writers call `update` unconditionally; whether anything shows is the caller's
    choice (`run_main` enables it only when stdout is a terminal).  keras (and so
    TensorFlow, a few seconds) is imported only when a bar is shown.
    """

    def __init__(self, total: int, enabled: bool, unit: str = "slice") -> None:
        self.total = total
        self.bar: Any = None
        self.done = 0
        if enabled:
            self.bar = _progbar_class()(total, unit_name=unit)

    def update(self, done: int) -> None:
        """Show that ``done`` of the ``total`` steps are complete."""
        self.done = done
        if self.bar is not None:
            self.bar.update(done)

    def close(self) -> None:
        """End an unfinished bar's line, so an error message starts on a line of its own."""
        if self.bar is not None and self.done < self.total:
            sys.stdout.write("\n")
            sys.stdout.flush()


def parse_flags(argv: list[str], prog: str) -> list[str]:
    """absl flag parsing, but a bad flag is one line on stderr and exit 2 (not absl's 1)."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except flags.Error as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)


def run_main(
    prog: str,
    argv: list[str],
    make: Callable[..., None],
    names: Sequence[str],
    summary: Callable[[Any, float], str],
) -> None:
    """A generator's ``main``: check the arguments, write ``--out``, print the summary.

    Calls ``make(--out, progress=<stdout is a terminal>, name=--name ...)`` for each flag in
    ``names`` (the flags are named as ``make``'s keywords), then prints
    ``summary(flags.FLAGS, seconds)``.  A missing ``--out``, a stray argument or a
    CTDatasetError is one line on stderr and exit 2.
    """
    from absl import flags

    cfg = flags.FLAGS
    problem = None
    if len(argv) > 1:
        problem = f"unexpected arguments: {' '.join(argv[1:])}"
    elif not cfg.out:
        problem = "--out is required (the HDF5 file to write)"
    if problem:
        print(f"{prog}: error: {problem}", file=sys.stderr)
        sys.exit(2)
    # A plain `kill` (SIGTERM) unwinds like Ctrl-C, so the partial temporary files go too.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    start = time.monotonic()
    try:
        kwargs = {name: getattr(cfg, name) for name in names}
        make(cfg.out, progress=sys.stdout.isatty(), **kwargs)
    except CTDatasetError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        sys.exit(2)
    # the summary times the work, not the start-up of the progress bar's keras
    print(summary(cfg, time.monotonic() - start - _PROGBAR.get("seconds", 0.0)))


def run_program(
    prog: str, define_flags: Callable[[], None], main: Callable[[list[str]], None]
) -> None:
    """Run a generator as a program: register its flags, parse them (`parse_flags`), ``main``.

    Flags are registered only here, when the module runs as a program, so importing the
    generator modules as a library never clashes with anyone else's absl flags.
    """
    from absl import app

    define_flags()
    app.run(main, flags_parser=lambda argv: parse_flags(argv, prog))
