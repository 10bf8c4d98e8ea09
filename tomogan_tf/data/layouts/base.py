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
from tomogan_tf.data.sources import ImageStack, open_stack, scan_finite
from tomogan_tf.data.sources.splits import SplitReconstructions, open_splits
from tomogan_tf.errors import InputError

# (noisy, target, val_noisy, val_target, fitted): see `Layout.training_stacks`.
TrainingStacks = tuple[ImageStack, ImageStack | None, ImageStack, ImageStack | None, dict]

# Per mode, the target datasets of a file holding both measurements.
MODE_KEYS: dict[str, dict[str, str]] = {
    "supervised": {"gt_key": "train_gt", "val_gt_key": "test_gt"},
    "n2n": {"gt_key": "train_ns2", "val_gt_key": "test_ns2"},
    "n2s": {},
    "n2i": {},
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

    def training_stacks(self, data: Any, workdir: str | None = None) -> TrainingStacks:
        """(noisy, target, val_noisy, val_target, fitted): training and validation
        stacks, checked (present, 3-D, aligned, finite); targets None for Noise2Self.
        ``fitted`` holds facts fitted from the data that the run records. ``workdir``
        (the run directory) is where a layout may keep what it derives from the input
        (Noise2Inverse's reconstructions of a scan), never the input file."""
        raise NotImplementedError

    def open_input(
        self, path: str, key: str | None, trained: dict, splits: bool = False
    ) -> ImageStack:
        """The stack denoise/evaluate read from ``path`` for a model trained as ``trained``.

        ``splits``: instead of ``key``, the sub-reconstructions a Noise2Inverse model
        was trained on (``trained["split_key"]``, ``trained["splits"]`` of them), read
        as their mean (`SplitReconstructions`), for ``--inference n2i``.
        """
        if splits:
            return open_noise2inverse_input(path, trained)
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


def open_noise2inverse_input(path: str, trained: dict) -> SplitReconstructions:
    """The K sub-reconstructions of ``path`` a Noise2Inverse model (``trained``) takes."""
    if trained.get("mode") != "n2i" or not trained.get("splits"):
        raise InputError(
            None,
            f"--inference n2i is for models trained with --mode n2i; this one was trained"
            f" with --mode {trained.get('mode')}: use --inference direct",
        )
    return open_splits(path, trained["split_key"], int(trained["splits"]))


def noise2inverse_stacks(path: str, data: Any) -> TrainingStacks:
    """Noise2Inverse's training and validation pairs from the ``data.splits``
    sub-reconstructions ``data.split_key`` of ``path``, checked finite; the last
    ``data.val_fraction`` of the slices validate."""
    splits = open_splits(path, data.split_key, data.splits)
    for stack in splits.splits:
        scan_finite(stack)
    n = splits.shape[0]
    n_val = max(1, round(data.val_fraction * n))
    if n - n_val < 1:
        raise InputError(path, f"{n} slices leave none to train on; lower --val_fraction")
    train, val = splits.subset(0, n - n_val), splits.subset(n - n_val, n)
    return (*_pairs(train), *_pairs(val), {})


def _pairs(splits: SplitReconstructions) -> tuple[ImageStack, ImageStack]:
    return splits.held_out_inputs(), splits.held_out_targets()
