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

from __future__ import annotations

import os
from typing import Any

import h5py
import numpy as np
from skimage.transform import radon

from data_tools.make_ct_dataset import (
    CTDatasetError,
    _check,
    _check_output,
    _Progress,
    _temporary_outputs,
    _theta,
    parse_flags,
    phantom_slice,
    random_phantom,
    run_main,
)

__all__ = [
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

GENERATOR = "data_tools.make_projection_dataset 1.0"
#: Mean dark offset (counts) and its per-pixel fixed-pattern spread.
DARK_LEVEL = 100.0
DARK_PATTERN = 3.0
#: Gaussian read noise per frame (counts, standard deviation).
READ_NOISE = 2.0
#: Relative per-pixel spread of the detector gain (what flat fields correct besides the beam).
GAIN_PATTERN = 0.03
#: Beam intensity at the column edges and at the row edges, relative to the centre.
BEAM_EDGE_COLUMNS = 0.7
BEAM_EDGE_ROWS = 0.85
#: Largest i0: brighter flat fields would saturate uint16 counts.
I0_MAX = 50000.0
#: Projections are simulated and written this many angles at a time.
ANGLE_BLOCK = 16
REFERENCE_NOTE = (
    "Noise-free ground truth for evaluation only; never use for training. transmission = "
    "exp(-line_integrals) is what flat/dark-corrected exchange/data estimates."
)
_UINT16_MAX = 65535


def _beam(rows: int, size: int, i0: float, rng: np.random.Generator) -> np.ndarray:
    """Mean photons per pixel without a sample (rows, size): smooth profile times gain."""
    u = (np.arange(size) - (size - 1) / 2) / (size / 2)  # -1..1 across columns
    v = (np.arange(rows) - (rows - 1) / 2) / max(rows / 2, 1)  # -1..1 down rows
    # a Gaussian exp(-x^2 / 2s^2) that falls to `edge` at x = 1, i.e. edge ** (x^2)
    profile = BEAM_EDGE_ROWS ** (v[:, None] ** 2) * BEAM_EDGE_COLUMNS ** (u[None, :] ** 2)
    gain = np.clip(1.0 + GAIN_PATTERN * rng.standard_normal((rows, size)), 0.8, 1.2)
    return i0 * profile * gain


def _counts(mean: np.ndarray | None, dark: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One measurement: Poisson photons plus dark offset and read noise, as uint16."""
    shape = dark.shape if mean is None else mean.shape
    photons = 0.0 if mean is None else rng.poisson(mean)
    noisy = photons + dark + READ_NOISE * rng.standard_normal(shape)
    return np.clip(np.rint(noisy), 0, _UINT16_MAX).astype(np.uint16)


def _line_integrals(
    phantom_rng: np.random.Generator,
    theta: np.ndarray,
    rows: int,
    size: int,
    pixel_mm: float,
    bar: _Progress,
) -> tuple[np.ndarray, str]:
    """(n_angles, rows, size) float32 line integrals of ``rows`` adjacent phantom slices."""
    step = 2.0 / size  # one pixel in the phantom's normalised units: isotropic voxels
    phantom = random_phantom(phantom_rng, z_center=(rows - 1) * step / 2)
    p = np.empty((len(theta), rows, size), np.float32)
    for r in range(rows):
        mu = phantom_slice(phantom, r * step, size)
        p[:, r, :] = (radon(mu, theta=theta, circle=True) * pixel_mm).T  # (size, N) -> (N, size)
        bar.update(r + 1, "projecting")
    return p, phantom.kind


def _write_file(
    tmp: str,
    p: np.ndarray,
    theta: np.ndarray,
    beam: np.ndarray,
    dark: np.ndarray,
    n_flats: int,
    n_darks: int,
    noise: np.random.SeedSequence,
    attrs: dict,
    progress: tuple[_Progress, int, str],
) -> None:
    """One Data Exchange file of ``p`` measured with fresh noise drawn from ``noise``."""
    proj_rng, flat_rng, dark_rng = (np.random.default_rng(s) for s in noise.spawn(3))
    n, rows, size = p.shape
    chunks = (1, rows, size)
    bar, done, label = progress
    with h5py.File(tmp, "w") as f:
        f.attrs.update(attrs)
        f["implements"] = "exchange:measurement"
        sample = f.create_group("measurement/sample")
        sample["name"] = f"synthetic {attrs['phantom_kind']} phantom"
        sample["description"] = attrs["description"]
        ex = f.create_group("exchange")
        data = ex.create_dataset("data", (n, rows, size), dtype=np.uint16, chunks=chunks)
        data.attrs.update({"units": "counts", "axes": "theta:y:x"})
        for start in range(0, n, ANGLE_BLOCK):
            block = slice(start, min(n, start + ANGLE_BLOCK))
            data[block] = _counts(beam * np.exp(-p[block].astype(np.float64)), dark, proj_rng)
            done += 1
            bar.update(done, label)
        if n_flats:
            frames = np.stack([_counts(beam, dark, flat_rng) for _ in range(n_flats)])
            ds = ex.create_dataset("data_white", data=frames, chunks=chunks)
            ds.attrs.update({"units": "counts", "axes": "theta:y:x"})
        if n_darks:
            frames = np.stack([_counts(None, dark, dark_rng) for _ in range(n_darks)])
            ds = ex.create_dataset("data_dark", data=frames, chunks=chunks)
            ds.attrs.update({"units": "counts", "axes": "theta:y:x"})
        ex.create_dataset("theta", data=theta).attrs["units"] = "degrees"
        ref = f.create_group("reference")
        ref.attrs["note"] = REFERENCE_NOTE
        ref.attrs["use"] = "evaluation only; never for training"
        ds = ref.create_dataset("transmission", data=np.exp(-p), chunks=chunks)
        ds.attrs["units"] = "1 (I / I0)"
        ref.create_dataset("line_integrals", data=p, chunks=chunks).attrs["units"] = "1 (-ln T)"


def make_projection_dataset(
    path: str | os.PathLike[str],
    pair: str | os.PathLike[str] | None = None,
    n_angles: int = 180,
    rows: int = 32,
    size: int = 128,
    i0: float = 2000.0,
    flats: int = 10,
    darks: int = 5,
    pixel_mm: float | None = None,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> None:
    """Write synthetic Data Exchange projections to ``path`` (and a noise repeat to ``pair``).

    See the module docstring for the layout and physics. ``pixel_mm`` defaults to
    DEFAULT_FOV_MM / size. Deterministic for given arguments. Files are written under
    temporary names and renamed when complete. Raises CTDatasetError (OutputExistsError if
    an output exists and not ``overwrite``).
    """
    path = os.fspath(path)
    pair = None if pair is None else os.fspath(pair)
    pixel_mm = _check(
        size=size,
        views=n_angles,
        i0=i0,
        pixel_mm=pixel_mm,
        slices_per_volume=1,
        n_angles=n_angles,
        rows=rows,
    )
    for name, n in (("flats", flats), ("darks", darks)):
        if int(n) != n or n < 0:
            raise CTDatasetError(f"{name} must be an integer >= 0, got {n}")
    if i0 > I0_MAX:
        raise CTDatasetError(f"i0 must be at most {I0_MAX:g} (uint16 counts saturate), got {i0}")
    if int(seed) != seed or seed < 0:
        raise CTDatasetError(f"seed must be a non-negative integer, got {seed}")
    outputs = [path] if pair is None else [path, pair]
    if pair is not None and os.path.abspath(pair) == os.path.abspath(path):
        raise CTDatasetError(f"--pair must be a different file from --out, got {pair} twice")
    for out in outputs:
        _check_output(out, overwrite)

    n_angles, rows, size, flats, darks = (int(x) for x in (n_angles, rows, size, flats, darks))
    scene, *noises = np.random.SeedSequence(int(seed)).spawn(3)
    phantom_rng, instrument_rng = (np.random.default_rng(s) for s in scene.spawn(2))
    theta = _theta(n_angles)
    blocks = -(-n_angles // ANGLE_BLOCK)
    bar = _Progress(rows + len(outputs) * blocks, progress, "make_projection_dataset", "steps")
    try:
        with _temporary_outputs(outputs) as tmps:
            p, kind = _line_integrals(phantom_rng, theta, rows, size, float(pixel_mm), bar)
            beam = _beam(rows, size, float(i0), instrument_rng)
            dark = DARK_LEVEL + DARK_PATTERN * instrument_rng.standard_normal((rows, size))
            for k, (out, tmp) in enumerate(zip(outputs, tmps, strict=True)):
                attrs = {
                    "generator": GENERATOR,
                    "seed": int(seed),
                    "realisation": k + 1,
                    "pair": os.path.basename(outputs[1 - k]) if pair is not None else "",
                    "n_angles": n_angles,
                    "rows": rows,
                    "size": size,
                    "pixel_mm": float(pixel_mm),
                    "row_step_mm": float(pixel_mm),
                    "i0": float(i0),
                    "n_flats": flats,
                    "n_darks": darks,
                    "dark_level": DARK_LEVEL,
                    "dark_pattern": DARK_PATTERN,
                    "read_noise": READ_NOISE,
                    "gain_pattern": GAIN_PATTERN,
                    "beam_edge_columns": BEAM_EDGE_COLUMNS,
                    "beam_edge_rows": BEAM_EDGE_ROWS,
                    "phantom_kind": kind,
                    "reference": (
                        "/reference: noise-free truth, for evaluation only (never training)"
                    ),
                    "description": (
                        "Synthetic parallel-beam projections: anatomy-like 3D phantom, radon line "
                        "integrals p, counts = Poisson(beam*exp(-p)) + dark offset + read noise "
                        "(uint16); flats = Poisson(beam) + dark; darks = dark; smooth non-uniform "
                        "beam times detector gain pattern."
                    ),
                }
                label = f"noise {os.path.basename(out)}"
                step = (bar, rows + k * blocks, label)
                _write_file(tmp, p, theta, beam, dark, flats, darks, noises[k], attrs, step)
    finally:
        bar.close()


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
    flags.DEFINE_float("pixel_mm", None, "Pixel size in mm (default 256/size).")
    flags.DEFINE_integer("seed", 0, "Random seed (same flags + seed -> identical files).")
    flags.DEFINE_boolean("overwrite", False, "Replace existing outputs (otherwise exit 2).")


def _summary(path: str, pair: str | None, seconds: float) -> str:
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
    names = (
        "pair", "n_angles", "rows", "size", "i0", "flats", "darks", "pixel_mm", "seed",
        "overwrite",
    )  # fmt: skip

    def summary(cfg: Any, seconds: float) -> str:
        return _summary(cfg.out, cfg.pair, seconds)

    run_main("make_projection_dataset", argv, make_projection_dataset, names, summary)


if __name__ == "__main__":
    from absl import app

    _define_flags()
    app.run(main, flags_parser=lambda argv: parse_flags(argv, "make_projection_dataset"))
