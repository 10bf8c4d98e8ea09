"""Write a synthetic low-dose CT dataset in the TomoGAN HDF5 layout.

Usage::

    python -m data_tools.make_ct_dataset --out data.h5 [--kind supervised|noisy|pairs]
        [--n_train 64 --n_test 16 --i0 1e4 ...]

All stacks are (N, H, W) float32 in attenuation units (1/mm): ``ns`` = low-dose (noisy),
``ns2`` = a second, independent low-dose scan of the same slices, ``gt`` = full-dose (clean)
reconstruction.  The file also holds ``theta`` (projection angles in degrees) and the
simulation settings as root attributes.  Which stacks are written depends on ``--kind``:

``supervised`` (default)
    ``train_ns``, ``train_gt``, ``test_ns``, ``test_gt``: noisy/clean pairs for supervised
    training (TomoGAN).
``noisy``
    ``train_ns`` only for training (no clean training data, as in a real experiment), plus
    ``test_ns`` and ``test_gt``.  ``test_gt`` is for evaluation only: self-supervised training
    never reads it.  Filtered back-projection correlates the noise of neighbouring pixels,
    which Noise2Self (``--mode n2s``) assumes independent, so it removes less of it here
    than from raw projections (``data_tools.make_projection_dataset``).
``pairs``
    ``train_ns`` and ``train_ns2``, two independent Poisson noise draws of the same slices,
    each reconstructed by the same FBP (Noise2Noise training pairs), plus ``test_ns``,
    ``test_ns2`` and ``test_gt`` (again, ``test_gt`` for evaluation only).

For a given seed, ``train_ns`` and ``test_ns`` (and ``*_gt``) are identical across kinds: the
second noise draw comes from its own random stream, so ``supervised`` files are bit-identical
to those written before ``--kind`` existed.  Non-supervised files carry a ``kind`` attribute.

Per slice:

1. An anatomy-like phantom (thorax, abdomen or head with fat, organs, lungs, bowel gas, cortical
   bone shells, calcifications, patient table / head-rest and cushions) is cut analytically out
   of a random 3D object made of ellipsoids and z-invariant boxes, with smooth textures from
   random low-frequency 3D plane waves.  Consecutive slices of one "volume" are therefore
   correlated like adjacent CT slices; different volumes are independent draws.
2. The slice is rendered at 2x resolution and 2x2-mean downsampled (partial-volume edges).
3. Line integrals ``p = radon(mu) * pixel_mm`` (parallel beam, ``circle=True``).
4. Low dose as in LoDoPaB-CT: ``counts ~ Poisson(i0 * exp(-p))``, clamped at >= 0.1,
   ``p_noisy = -log(counts / i0)`` (for ``pairs``, a second independent ``counts`` draw).
5. All sinograms are reconstructed with ramp-filtered back-projection, so clean and noisy
   share the same view-sampling artefacts and differ only by the dose noise (the TomoGAN
   convention).
"""

# The command line only (its docstring above is what --help prints): the file is written by
# data_tools.writers, steps 1-2 are data_tools.phantoms, 3-5 data_tools.scanner, and the
# summary's PSNR is data_tools.metrics.  The library names are re-exported, so
# `from data_tools.make_ct_dataset import make_ct_dataset` keeps working.

from __future__ import annotations

import sys
from typing import Any

import h5py

from data_tools.cli import run_main, run_program
from data_tools.errors import CTDatasetError, OutputExistsError
from data_tools.metrics import mean_psnr
from data_tools.phantoms import Phantom3D, phantom_slice, random_phantom
from data_tools.scanner import (
    DEFAULT_FOV_MM,
    DEFAULT_VIEWS,
    ScanVariety,
    low_dose_line_integrals,
    simulate_scan,
    simulate_slices,
)
from data_tools.writers import CT_GENERATOR as GENERATOR
from data_tools.writers import KINDS, make_ct_dataset

__all__ = [
    "DEFAULT_FOV_MM",
    "DEFAULT_VIEWS",
    "GENERATOR",
    "KINDS",
    "CTDatasetError",
    "OutputExistsError",
    "Phantom3D",
    "ScanVariety",
    "low_dose_line_integrals",
    "make_ct_dataset",
    "mean_psnr",
    "phantom_slice",
    "random_phantom",
    "simulate_scan",
    "simulate_slices",
]


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def _define_flags() -> None:
    """Register the CLI flags (only when run as a program, so importing never clashes)."""
    from absl import flags

    flags.DEFINE_string("out", None, "Output HDF5 file (required).")
    flags.DEFINE_enum(
        "kind",
        "supervised",
        list(KINDS),
        "supervised: train_ns/train_gt pairs; noisy: train_ns only (self-supervised); pairs: "
        "train_ns/train_ns2, two independent noisy scans (Noise2Noise). Test splits always "
        "hold test_gt, for evaluation only.",
    )
    flags.DEFINE_integer("n_train", 64, "Number of training slices.")
    flags.DEFINE_integer(
        "n_test",
        16,
        "Number of test slices, cut from phantom volumes of their own (independent of the"
        " training volumes; --slices_per_volume adjacent slices from each).",
    )
    flags.DEFINE_integer("size", 256, "Image height = width in pixels (even, >= 16).")
    flags.DEFINE_integer(
        "views",
        DEFAULT_VIEWS,
        "Projection angles, uniform in [0, 180) degrees. 360 is near the angular Nyquist rate "
        "(~pi/2*size) for size 256; fewer views give sparse-view data (streaks in both ns and gt).",
    )
    flags.DEFINE_float("i0", 1e4, "Incident photons per detector ray (lower = noisier).")
    flags.DEFINE_float(
        "pixel_mm",
        None,
        f"Pixel size in mm (default {DEFAULT_FOV_MM:g}/size, i.e. a {DEFAULT_FOV_MM:g} mm field "
        "of view: body line integrals reach p ~ 3.5-5).",
    )
    flags.DEFINE_integer(
        "slices_per_volume", 16, "Adjacent, correlated slices cut from each random 3D phantom."
    )
    flags.DEFINE_float(
        "i0_max",
        None,
        "With it, each scan's dose is log-uniform in [--i0, --i0_max] (one model for all doses).",
    )
    flags.DEFINE_float(
        "sparse_fraction",
        0.0,
        "Share of scans made from only --sparse_views views; their target is still the"
        " full-view clean reconstruction (teaches streak removal).",
    )
    flags.DEFINE_list(
        "sparse_views", ["45"], "View counts for sparse scans, each dividing --views."
    )
    flags.DEFINE_integer(
        "draws", 1, "Independent scans (noise, dose, views) of every volume (supervised)."
    )
    flags.DEFINE_integer("seed", 0, "Random seed (same flags + seed -> bit-identical arrays).")
    flags.DEFINE_boolean("overwrite", False, "Replace --out if it exists (otherwise exit 2).")


def main(argv: list[str]) -> None:
    """The program: build the `ScanVariety` from the flags, write ``--out``, print a summary."""
    names = (
        "n_train", "n_test", "size", "views", "i0", "pixel_mm", "slices_per_volume", "seed",
        "overwrite", "kind",
    )  # fmt: skip
    from absl import flags

    cfg = flags.FLAGS
    try:
        views = tuple(int(v) for v in cfg.sparse_views)
    except ValueError:
        print(f"make_ct_dataset: error: --sparse_views must be integers, got {cfg.sparse_views}",
              file=sys.stderr)  # fmt: skip
        sys.exit(2)
    variety = ScanVariety(cfg.i0_max, cfg.sparse_fraction, views, cfg.draws)

    def make(path: str, **kwargs: Any) -> None:
        make_ct_dataset(path, variety=variety, **kwargs)

    def summary(cfg: Any, seconds: float) -> str:
        return _summary(cfg.out, cfg.kind, seconds)

    run_main("make_ct_dataset", argv, make, names, summary)


def _summary(path: str, kind: str, seconds: float) -> str:
    """The one-line report of what a run wrote, per kind."""
    with h5py.File(path, "r") as f:
        train_shape = f["train_ns"].shape
        test_ns, test_gt = f["test_ns"][...], f["test_gt"][...]
        psnr2 = mean_psnr(f["test_ns2"][...], test_gt) if kind == "pairs" else None
    psnr = f"mean PSNR test_ns vs test_gt {mean_psnr(test_ns, test_gt):.2f} dB"
    if kind == "supervised":
        what = f"train_ns/train_gt {train_shape}, test_ns/test_gt {test_ns.shape}"
    elif kind == "noisy":
        what = (
            f"train_ns {train_shape} (noisy only, no clean training data), test_ns/test_gt "
            f"{test_ns.shape} (test_gt for evaluation only)"
        )
    else:
        what = (
            f"train_ns/train_ns2 {train_shape} (independent noise pairs), "
            f"test_ns/test_ns2/test_gt {test_ns.shape} (test_gt for evaluation only)"
        )
        psnr += f" (test_ns2 {psnr2:.2f} dB)"
    return f"make_ct_dataset: wrote {path}: {what} float32 [1/mm]; {psnr}; {seconds:.1f}s"


if __name__ == "__main__":
    run_program("make_ct_dataset", _define_flags, main)
