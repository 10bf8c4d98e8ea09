"""Write synthetic raw X-ray projections as a Data Exchange HDF5 file (APS / tomopy layout).

Usage::

    python -m data_tools.make_projection_dataset --out proj.h5 [--pair proj2.h5]
        [--n_angles 180 --rows 32 --size 128 --i0 2000 --flats 10 --darks 5 --seed 0]

The file holds what a parallel-beam tomography detector records, before any correction:

``/exchange/data``        (n_angles, rows, size) uint16 projection counts
``/exchange/data_white``  (flats, rows, size) uint16 flat fields (beam, no sample)
``/exchange/data_dark``   (darks, rows, size) uint16 dark fields (no beam)
``/exchange/theta``       (n_angles,) float64 angles in degrees, uniform in [0, 180)
``/reference/transmission``, ``/reference/line_integrals``  (n_angles, rows, size) float32,
                          the noise-free ``exp(-p)`` and ``p``: ground truth for evaluation
                          ONLY, never to be used for training (outside ``/exchange``, so
                          Data Exchange readers ignore it)

plus ``/implements``, ``/measurement/sample`` and the simulation settings as root attributes.
``--flats 0`` / ``--darks 0`` leave the flat / dark dataset out.

Physics:

1. ``rows`` adjacent slices, one pixel apart (isotropic voxels), of one anatomy-like
   `random_phantom` from `make_ct_dataset`, rendered with `phantom_slice` at ``size``.
2. Line integrals ``p = radon(mu, circle=True) * pixel_mm`` per slice; detector row ``r`` of
   every projection comes from slice ``r``.
3. The beam: about ``i0`` photons per pixel at the detector centre, falling smoothly (a broad
   2-D Gaussian) to BEAM_EDGE_COLUMNS at the left/right edges and BEAM_EDGE_ROWS at the
   top/bottom, times a per-pixel detector gain pattern (GAIN_PATTERN relative spread).
4. A dark offset of about DARK_LEVEL counts (per-pixel fixed pattern DARK_PATTERN) plus
   Gaussian read noise READ_NOISE in every frame.
5. ``projection = Poisson(beam * exp(-p)) + dark``, ``flat = Poisson(beam) + dark``,
   ``dark frame = dark``, rounded and clipped to uint16.

So flat/dark correction ``(data - dark) / (flat - dark)`` recovers the transmission
``exp(-p)`` up to photon noise. ``--pair FILE`` writes a second file of the same phantom,
geometry, beam and detector with independent noise in projections, flats and darks: two
measurements of one scene, for Noise2Noise training. Both files have identical
``/reference`` data. Deterministic for a seed (the first file is the same with or without
``--pair``).
"""

# The command line only (its docstring above is what --help prints): the files are written
# by data_tools.writers, the beam and detector model is data_tools.scanner (its constants
# are re-exported here, as is the library function).

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from data_tools.cli import run_main, run_program
from data_tools.scanner import (
    BEAM_EDGE_COLUMNS,
    BEAM_EDGE_ROWS,
    DARK_LEVEL,
    DARK_PATTERN,
    GAIN_PATTERN,
    I0_MAX,
    READ_NOISE,
)
from data_tools.writers import ANGLE_BLOCK, REFERENCE_NOTE, make_projection_dataset
from data_tools.writers import PROJECTION_GENERATOR as GENERATOR

__all__ = [
    "ANGLE_BLOCK",
    "BEAM_EDGE_COLUMNS",
    "BEAM_EDGE_ROWS",
    "DARK_LEVEL",
    "DARK_PATTERN",
    "GAIN_PATTERN",
    "GENERATOR",
    "I0_MAX",
    "READ_NOISE",
    "REFERENCE_NOTE",
    "make_projection_dataset",
]


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def _define_flags() -> None:
    """Register the CLI flags (only when run as a program, so importing never clashes)."""
    from absl import flags

    flags.DEFINE_string("out", None, "Output Data Exchange HDF5 file (required).")
    flags.DEFINE_string(
        "pair", None, "Also write this file: same scene, independent noise (Noise2Noise pairs)."
    )
    flags.DEFINE_integer("n_angles", 180, "Projection angles, uniform in [0, 180) degrees.")
    flags.DEFINE_integer("rows", 32, "Detector rows (adjacent phantom slices).")
    flags.DEFINE_integer("size", 128, "Detector columns = slice width in pixels (even, >= 16).")
    flags.DEFINE_float("i0", 2000.0, "Photons per detector pixel at the beam centre.")
    flags.DEFINE_integer("flats", 10, "Flat-field frames (0: no exchange/data_white).")
    flags.DEFINE_integer("darks", 5, "Dark-field frames (0: no exchange/data_dark).")
    flags.DEFINE_float(
        "pixel_mm", None, "Pixel size in mm (default 256/size, or the style's field of view/size)."
    )
    flags.DEFINE_string(
        "style",
        None,
        "A held-out phantom style (knee, head2, pelvis, shepp: data_tools.make_heldout_ct)"
        " instead of training's anatomy.",
    )
    flags.DEFINE_integer("seed", 0, "Random seed (same flags + seed -> identical files).")
    flags.DEFINE_boolean("overwrite", False, "Replace existing outputs (otherwise exit 2).")


def _summary(path: str, pair: str | None, seconds: float) -> str:
    """The one-line report of what a run wrote: layout, frame counts, count percentiles."""
    with h5py.File(path, "r") as f:
        data = f["exchange/data"]
        shape = data.shape
        counts = data[...]
        frames = {
            key: f[f"exchange/{key}"].shape[0] for key in ("data_white", "data_dark")
            if f"exchange/{key}" in f
        }  # fmt: skip
    extra = "".join(f", {key} {n} frames" for key, n in frames.items())
    also = f" and {pair} (same scene, independent noise)" if pair else ""
    low, median = np.percentile(counts, [1, 50])
    return (
        f"make_projection_dataset: wrote {path}{also}: exchange/data {shape} uint16 counts"
        f"{extra}, theta in degrees; counts 1st percentile {low:.0f}, median {median:.0f}; "
        f"/reference holds the noise-free truth (evaluation only); {seconds:.1f}s"
    )


def main(argv: list[str]) -> None:
    """The program: write ``--out`` (and ``--pair``), print a summary."""
    names = (
        "pair", "n_angles", "rows", "size", "i0", "flats", "darks", "pixel_mm", "seed",
        "overwrite", "style",
    )  # fmt: skip

    def summary(cfg: Any, seconds: float) -> str:
        return _summary(cfg.out, cfg.pair, seconds)

    run_main("make_projection_dataset", argv, make_projection_dataset, names, summary)


if __name__ == "__main__":
    run_program("make_projection_dataset", _define_flags, main)
