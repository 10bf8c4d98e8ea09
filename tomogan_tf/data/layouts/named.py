"""The TomoGAN layout: named (N, H, W) stacks in one HDF5 file.

Training reads ``ns_key``/``val_ns_key`` (noisy) and ``gt_key``/``val_gt_key``
(clean, or the second noisy measurement, possibly from ``target_h5``), or for
Noise2Inverse the sub-reconstructions ``split_key`` (``split_0`` ...); denoise and
evaluate read any dataset, TIFF, ``.npy`` or DICOM series.
"""

from __future__ import annotations

from typing import Any

from tomogan_tf.data.layouts.base import Layout, TrainingStacks, noise2inverse_stacks
from tomogan_tf.data.sources import open_hdf5, scan_finite
from tomogan_tf.data.stacks import check_aligned


class NamedLayout(Layout):
    name = "tomogan"
    rank = 0

    def problems(self, data: Any) -> list[str]:
        return ["--minus_log applies to --layout dxchange only"] if data.minus_log else []

    def training_stacks(self, data: Any, workdir: str | None = None) -> TrainingStacks:
        if data.mode == "n2i":
            return noise2inverse_stacks(data.h5, data)
        noisy = open_hdf5(data.h5, data.ns_key, require_stack=True)
        val_noisy = open_hdf5(data.h5, data.val_ns_key, require_stack=True)
        for stack in (noisy, val_noisy):
            scan_finite(stack)
        if data.mode == "n2s":
            return noisy, None, val_noisy, None, {}
        other = data.target_h5 or data.h5
        target = open_hdf5(other, data.gt_key, require_stack=True)
        val_target = open_hdf5(other, data.val_gt_key, require_stack=True)
        for stack in (target, val_target):
            scan_finite(stack)
        what = "clean" if data.mode == "supervised" else "target"
        check_aligned(noisy, target, what)
        check_aligned(val_noisy, val_target, what)
        return noisy, target, val_noisy, val_target, {}


LAYOUT = NamedLayout()
