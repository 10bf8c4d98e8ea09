"""Public names of a package loaded on first use (PEP 562), so that importing it is cheap.

The command-line tools check their flags and input files before TensorFlow loads;
that works only while the packages on that path (`tomogan_tf.data`, `.models`,
`.training`, `.inference`) do not import their TensorFlow modules just to be
imported. Their ``__init__`` lists each public name with the module defining it and
ends in ``__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(
    package: str, exports: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, which exports ``exports``.

    ``exports`` maps each public name to the module that defines it; the name is
    imported from there on first use and then kept in the package's namespace.
    """

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__
