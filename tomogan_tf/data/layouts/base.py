"""What a layout is: how one kind of file maps to training stacks, inputs and outputs.

A layout answers every question training, denoise and evaluate used to answer with
``if layout == "dxchange"``: which settings it cannot work with, the default dataset
names, the training/validation stacks (checked and split), what an input file is
read as, what a model is scored against, and where a denoised stack is written. A
new layout is a new module in this package defining a `Layout` subclass and
``LAYOUT = ThatLayout()``; the registry (`tomogan_tf.data.layouts`) finds it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tomogan_tf.data.sinks import open_sink
from tomogan_tf.data.sources import ImageStack, open_stack

# (noisy, target, val_noisy, val_target, fitted): see `Layout.training_stacks`.
TrainingStacks = tuple[ImageStack, ImageStack | None, ImageStack, ImageStack | None, dict]

# Per mode, the target datasets of a file holding both measurements.
MODE_KEYS: dict[str, dict[str, str]] = {
    "supervised": {"gt_key": "train_gt", "val_gt_key": "test_gt"},
    "n2n": {"gt_key": "train_ns2", "val_gt_key": "test_ns2"},
    "n2s": {},
}


class Layout:
    """One layout. ``data`` arguments are the data settings (``h5``, ``layout``,
    ``mode``, ``ns_key``, ``gt_key``, ``val_ns_key``, ``val_gt_key``, ``target_h5``,
    ``minus_log``, ``val_fraction``); ``trained`` is a model's record of its training
    (``layout``, ``mode``, ``minus_log``, ``flat_field``, ...)."""

    name: str
    #: Position in `LAYOUTS` (flag choices and messages list layouts in this order).
    rank: int = 100
    #: The denoise tool's ``--dtype`` when none is given.
    default_dtype: str = "float32"

    def problems(self, data: Any) -> list[str]:
        """Settings this layout cannot work with, one message each (empty: none)."""
        return []

    def default_keys(self, data: Any) -> dict[str, str]:
        """Defaults for the unset ``gt_key`` / ``val_gt_key`` of ``data``'s mode.

        A second file (``target_h5``, Noise2Noise) holds its stacks under the noisy
        stacks' own names.
        """
        defaults = dict(MODE_KEYS.get(data.mode, {}))
        if data.mode == "n2n" and data.target_h5:
            defaults = {"gt_key": data.ns_key, "val_gt_key": data.val_ns_key}
        return {k: v for k, v in defaults.items() if getattr(data, k, None) is None}

    def training_stacks(self, data: Any) -> TrainingStacks:
        """(noisy, target, val_noisy, val_target, fitted): training and validation
        stacks, checked (present, 3-D, aligned, finite); targets None for Noise2Self.
        ``fitted`` holds facts fitted from the data that the run records."""
        raise NotImplementedError

    def open_input(self, path: str, key: str | None, trained: dict) -> ImageStack:
        """The stack denoise/evaluate read from ``path`` for a model trained as ``trained``."""
        return open_stack(path, key)

    def reference_key(self, trained: dict) -> str:
        """The clean dataset evaluate scores against when none is named."""
        return "test_gt"

    def open_sink(
        self,
        path: str,
        source: ImageStack,
        dtype: np.dtype | str,
        key: str = "denoised",
        attrs: dict | None = None,
        overwrite: bool = False,
    ):
        """Where the denoised ``source`` goes (a sink, not yet entered)."""
        return open_sink(path, source, dtype, key, attrs, overwrite)

    def accepts(self, path: str) -> bool:
        """Whether an input file ``path`` can be read in this layout."""
        return True

    def __repr__(self) -> str:
        return f"<layout {self.name}>"
