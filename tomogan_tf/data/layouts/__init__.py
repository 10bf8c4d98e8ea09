"""The layout registry: `LAYOUTS` and `get_layout`.

Every module of this package but `base` defines one layout as ``LAYOUT``; they are
found on import and listed in the order of their ``rank``. A third layout is one
new module here.
"""

from __future__ import annotations

import importlib
import pkgutil

from tomogan_tf.data.layouts.base import Layout, TrainingStacks
from tomogan_tf.errors import InputError


def _discover() -> dict[str, Layout]:
    found = []
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            layout = importlib.import_module(f"{__name__}.{module.name}").LAYOUT
            found.append(layout)
    return {layout.name: layout for layout in sorted(found, key=lambda x: (x.rank, x.name))}


_REGISTRY = _discover()
#: The registered layout names, in order (the first is the default).
LAYOUTS: tuple[str, ...] = tuple(_REGISTRY)


def get_layout(name: str) -> Layout:
    """The layout called ``name``; `InputError` listing the choices for any other."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(None, f"--layout must be one of {', '.join(LAYOUTS)}") from None


__all__ = ["LAYOUTS", "Layout", "TrainingStacks", "get_layout"]
