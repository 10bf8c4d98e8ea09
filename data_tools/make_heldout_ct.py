"""Write the held-out CT quality benchmark: anatomy and geometry that training never uses.

Usage::

    python -m data_tools.make_heldout_ct --out heldout.h5 [--n_per_style 8 --seed 0]
        [--styles knee,head2,pelvis,shepp --slices_per_volume 4 --size 256 --views 540]

Our models are trained on `data_tools.make_ct_dataset` (thorax, abdomen and ``head`` ellipsoid
phantoms, 1 mm pixels, 360 views).  A figure measured on that generator's own test split says
how well a model fits that generator; this file is the other half of the benchmark, built to
be *unlike* the training data in anatomy, textures, supports, pixel size and view count:

``knee``   (0.7 mm pixels, 179 mm field of view) a single limb at the patello-femoral level
           (femur + patella) or just below the joint (tibia + fibula): cortical shells of
           varying thickness around trabecular bone (a ridge-network texture, not the plane
           waves of training), muscle groups separated by thin fat planes, popliteal fat with
           vessels, subcutaneous fat, skin, a foam bolster and a curved sandwich tabletop.
``head2``  (0.8 mm pixels, 205 mm; training's ``head`` is a vault slice with ventricles and
           white-matter blobs in a 3-6 mm skull on a flat head-rest) a skull-base slice:
           eye globes with lenses, recti and optic nerves in orbital fat, ethmoid air cells,
           sphenoid sinus, clivus, pons, fourth ventricle, cerebellum with folia texture,
           dense petrous bones, pneumatised mastoids, external ear canals and pinnae, a thin
           (1.5-3.5 mm) skull, temporalis muscles, and a U-shaped head cradle lined with foam.
``pelvis`` (1.4 mm pixels, 358 mm) the hip-joint level: femoral heads in acetabula with a
           joint space, necks and trochanters, ischia, pubic rami, coccyx, bladder (sometimes
           with layering contrast), uterus/prostate, rectum with gas and mottled stool,
           phleboliths, femoral vessels, gluteal / iliopsoas / obturator muscles with fat
           planes, a thick (anterior/posterior) fat layer, a mattress and a curved tabletop.
``shepp``  (0.9 mm pixels, 230 mm) a randomly perturbed, textured Shepp-Logan phantom at
           soft-tissue contrast (the *original* 1-4 % inner contrasts, not the "modified"
           high-contrast ones) in attenuation units.

Attenuation is in 1/mm as in training (water ~0.0193, soft tissue 0.019-0.022, fat
0.017-0.018, cortical bone 0.045-0.06, trabecular/marrow in between, air 0).  Pixel sizes
are the field of view of each style divided by ``size`` (table `STYLE_FOV_MM`), never 1 mm at
size 256.  The full scan has ``views`` = 540 parallel-beam angles in [0, 180), not 360.

Each 3D phantom ("volume") gives ``slices_per_volume`` adjacent slices `HELDOUT_SLICE_STEP`
apart (0.6x training's step: 1.1-2.2 mm depending on the style), stored consecutively, so
models that read neighbouring slices work; different volumes are independent draws.

Rows (HDF5 datasets, float32 (N, size, size), 1/mm), N = n_per_style x number of styles:

``clean``      ramp FBP of the noise-free sinogram with all ``views`` angles (the reference)
``i0_1e4_ns``  Poisson noise at I0 = 1e4 photons on all views, same FBP
``i0_2e3_ns``  Poisson noise at I0 = 2e3 on all views
``sparse_ns``  ``round(views / 8)`` evenly spaced views in [0, 180) (68 for 540) at I0 = 1e4,
               FBP from those views only: noise plus view-aliasing streaks

Every noisy row is scored against the same full-view noise-free ``clean``.  The noise model
is LoDoPaB-CT's, exactly as in make_ct_dataset: ``counts ~ Poisson(i0 * exp(-p))`` clamped
at ``COUNT_FLOOR``, ``p_noisy = -log(counts / i0)``.  Each row's noise has its own random
stream per volume.  Per-slice metadata: ``style`` (N,) ASCII strings (``f["style"].asstr()``
or ``.astype(str)``), ``volume`` (N,) int32 ids (global, increasing), ``pixel_mm`` (N,) and
``z_mm`` (N,) slice position along the volume.  Root attributes record the geometry per style
(``pixel_mm_<style>``, ``fov_mm_<style>``, ``slice_step_mm_<style>``), ``views``,
``sparse_views``, ``i0_full_views``, ``sparse_i0``, ``seed``, ``generator`` and the scoring
protocol; each noisy dataset carries its own ``i0`` and ``views`` attributes.

Deterministic for given arguments.  Each style draws from its own child seed of ``seed``
(fixed by its place in `STYLES`), so ``--styles`` picks a subset without changing any style's
slices, and the first k volumes of a style do not depend on ``n_per_style``.
"""

# The command line only (its docstring above is what --help prints): the styles are built by
# data_tools.phantoms_heldout, scanned by data_tools.scanner (scan_rows, simulate_heldout),
# written by data_tools.writers and scored by data_tools.metrics.psnr_per_slice; the
# library names are re-exported.

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from data_tools.cli import run_main, run_program
from data_tools.metrics import psnr_per_slice
from data_tools.phantoms_heldout import HELDOUT_SLICE_STEP, STYLE_FOV_MM, STYLES, heldout_phantom
from data_tools.scanner import (
    HELDOUT_VIEWS,
    I0_ROWS,
    ROWS,
    SPARSE_FACTOR,
    scan_rows,
    simulate_heldout,
    sparse_views,
)
from data_tools.writers import HELDOUT_GENERATOR as GENERATOR
from data_tools.writers import make_heldout_ct

__all__ = [
    "GENERATOR",
    "HELDOUT_SLICE_STEP",
    "HELDOUT_VIEWS",
    "I0_ROWS",
    "ROWS",
    "SPARSE_FACTOR",
    "STYLES",
    "STYLE_FOV_MM",
    "heldout_phantom",
    "make_heldout_ct",
    "psnr_per_slice",
    "scan_rows",
    "simulate_heldout",
    "sparse_views",
]


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def _define_flags() -> None:
    """Register the CLI flags (only when run as a program, so importing never clashes)."""
    from absl import flags

    flags.DEFINE_string("out", None, "Output HDF5 file (required).")
    flags.DEFINE_integer("n_per_style", 8, "Slices per phantom style.")
    flags.DEFINE_integer("slices_per_volume", 4, "Adjacent slices cut from each random 3D phantom.")
    flags.DEFINE_integer(
        "size", 256, "Image height = width in pixels (even, >= 16); each style keeps its FOV."
    )
    flags.DEFINE_integer(
        "views",
        HELDOUT_VIEWS,
        f"Full-scan angles in [0, 180); sparse_ns uses round(views/{SPARSE_FACTOR}).",
    )
    flags.DEFINE_string("styles", ",".join(STYLES), "Comma-separated phantom styles to write.")
    flags.DEFINE_integer("seed", 0, "Random seed (same flags + seed -> identical arrays).")
    flags.DEFINE_boolean("overwrite", False, "Replace --out if it exists (otherwise exit 2).")


def _summary(path: str, seconds: float) -> str:
    """Report of what a run wrote, with the noisy rows' PSNR (per-slice window) per style."""
    with h5py.File(path, "r") as f:
        clean = f["clean"][...]
        psnr = {row: psnr_per_slice(f[row][...], clean) for row in ROWS}
        style = f["style"][...].astype(str)
        n_volumes = len(np.unique(f["volume"][...]))
    names = list(dict.fromkeys(style))
    overall = ", ".join(f"{row} {psnr[row].mean():.2f} dB" for row in ROWS)
    lines = [
        f"make_heldout_ct: wrote {path}: {clean.shape} float32 [1/mm] x (clean + {len(ROWS)} "
        f"rows), {n_volumes} volumes, styles {','.join(names)}; mean PSNR vs clean (per-slice "
        f"window): {overall}; {seconds:.1f}s"
    ]
    for name in names:
        sel = style == name
        per = ", ".join(f"{row} {psnr[row][sel].mean():.2f}" for row in ROWS)
        lines.append(f"  {name:7s} {int(sel.sum()):3d} slices: {per} dB")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    """The program: write ``--out``, print the summary with PSNR per row and style."""
    names = ("n_per_style", "slices_per_volume", "size", "views", "styles", "seed", "overwrite")

    def summary(cfg: Any, seconds: float) -> str:
        return _summary(cfg.out, seconds)

    run_main("make_heldout_ct", argv, make_heldout_ct, names, summary)


if __name__ == "__main__":
    run_program("make_heldout_ct", _define_flags, main)
