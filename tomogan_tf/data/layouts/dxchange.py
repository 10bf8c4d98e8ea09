"""The Data Exchange layout: raw projections with flats and darks (APS / tomopy files).

Training reads flat/dark-corrected projections of ``h5`` (Noise2Self), or of ``h5``
and a second scan ``target_h5`` (Noise2Noise), and holds their last ``val_fraction``
out for validation: adjacent angles look alike, so a block at the end is more nearly
unseen than every k-th one. Noise2Inverse instead trains on slices: the scan is
reconstructed once into K sub-reconstructions in the run directory
(`tomogan_tf.tomography.reconstruct.cached_reconstruction`). Denoise reads a Data
Exchange file corrected as in training and writes a copy of it with only
``/exchange/data`` replaced; evaluate scores against the ``reference/`` datasets
``data_tools.make_projection_dataset`` writes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tomogan_tf.data.dxchange import DATA, THETA
from tomogan_tf.data.layouts.base import Layout, TrainingStacks, noise2inverse_stacks
from tomogan_tf.data.sinks import DxchangeSink
from tomogan_tf.data.sources import DxchangeStack, ImageStack, file_format, scan_finite
from tomogan_tf.data.sources.dxchange import open_dxchange
from tomogan_tf.data.stacks import check_aligned
from tomogan_tf.errors import InputError


class DxchangeLayout(Layout):
    name = "dxchange"
    rank = 1
    default_dtype = "input"  # raw detector units, as the input file stores them

    def problems(self, data: Any) -> list[str]:
        problems = []
        if data.mode == "supervised":
            problems.append(
                "Data Exchange files hold no clean images: use --mode n2s, --mode n2i"
                " (reconstructed slices), or --mode n2n with --target_h5"
            )
        if data.mode == "n2i" and data.minus_log:
            problems.append(
                "--minus_log does not apply to --mode n2i: the projections are always"
                " reconstructed from their line integrals"
            )
        if data.mode == "n2n" and not data.target_h5:
            problems.append(
                "--mode n2n --layout dxchange needs --target_h5, a second Data Exchange"
                " file of the same scan"
            )
        return problems

    def training_stacks(self, data: Any, workdir: str | None = None) -> TrainingStacks:
        if data.mode == "n2i":
            from tomogan_tf.tomography.reconstruct import cached_reconstruction

            if workdir is None:
                raise InputError(data.h5, "Noise2Inverse from projections needs a run directory")
            path = cached_reconstruction(data.h5, workdir, data.splits, data.centre)
            return noise2inverse_stacks(path, data)
        stack = _projections(data.h5, data.minus_log)
        stacks: list[DxchangeStack] = [stack]
        if data.mode == "n2n":
            second = _projections(data.target_h5, data.minus_log)
            check_aligned(stack, second, "second measurement")
            angles = (stack.info.theta, second.info.theta)
            if all(a is not None for a in angles) and not np.allclose(*angles, rtol=0, atol=1e-3):
                raise InputError(
                    data.target_h5,
                    f"its angles '{THETA}' differ from those of {data.h5}; Noise2Noise"
                    " needs the same projection angles in both scans",
                )
            stacks.append(second)
        fitted = {"flat_field": stack.flat_field}
        n = stack.shape[0]
        n_val = max(1, round(data.val_fraction * n))
        if n - n_val < 1:
            raise InputError(
                data.h5, f"{n} projections leave none to train on; lower --val_fraction"
            )
        train = [s.subset(0, n - n_val) for s in stacks]
        val = [s.subset(n - n_val, n) for s in stacks]
        if data.mode == "n2s":
            return train[0], None, val[0], None, fitted
        return train[0], train[1], val[0], val[1], fitted

    def open_input(
        self, path: str, key: str | None, trained: dict, splits: bool = False
    ) -> ImageStack:
        """The corrected projections of ``path``, refused if corrected unlike training
        (flat fields or not); ``key`` does not apply, nor ``splits`` (models trained on
        projections denoise projections)."""
        if splits:
            raise InputError(
                path, "--inference n2i takes reconstructed sub-reconstructions, not projections"
            )
        source = open_dxchange(path, minus_log=bool(trained.get("minus_log")))
        check_flat_field(source, trained.get("flat_field"))
        return source

    def reference_key(self, trained: dict) -> str:
        if trained.get("minus_log"):
            return "reference/line_integrals"
        return "reference/transmission"

    def open_sink(
        self,
        path: str,
        source: ImageStack,
        dtype: np.dtype | str,
        key: str = "denoised",
        attrs: dict | None = None,
        overwrite: bool = False,
    ) -> DxchangeSink:
        """A copy of the input file with the denoised projections, in raw units."""
        if not isinstance(source, DxchangeStack):
            raise InputError(source.path, "Data Exchange output needs a Data Exchange input")
        return DxchangeSink(path, source, dtype, attrs=attrs)

    def accepts(self, path: str) -> bool:
        return file_format(path) == "hdf5"


def check_flat_field(source: DxchangeStack, trained: bool | None) -> None:
    """Refuse projections corrected unlike the training data (``trained``: whether it
    had flat fields; None: not recorded)."""
    if trained is not None and bool(trained) != source.flat_field:
        raise InputError(
            source.path,
            "has no flat fields, but the model was trained on flat-corrected projections"
            if trained
            else "has flat fields, but the model was trained on projections without them",
        )


def _projections(path: str, minus_log: bool) -> DxchangeStack:
    """The checked projection stack of one training file."""
    stack = open_dxchange(path, minus_log)
    if stack.single_image or stack.shape[0] < 2:
        raise InputError(path, f"'{DATA}' holds one projection; training needs a stack")
    scan_finite(stack)
    return stack


LAYOUT = DxchangeLayout()
