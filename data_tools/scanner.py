"""Acquisition physics: what a CT scanner or a tomography detector makes of a phantom.

Every generator in data_tools scans phantoms the same way, so this is the one place for it:

* geometry: parallel beam, `view_angles` uniform in [0, 180), ``radon(circle=True)`` line
  integrals ``p = radon(mu) * pixel_mm`` (pixel size defaults to DEFAULT_FOV_MM / size);
* dose: the LoDoPaB-CT model `low_dose_line_integrals`, ``counts ~ Poisson(i0 * exp(-p))``
  clamped at COUNT_FLOOR, ``p_noisy = -log(counts / i0)``;
* reconstruction: ramp-filtered back-projection of noisy and noise-free sinograms alike,
  so clean and noisy share the view-sampling artefacts and differ only by the dose noise
  (the TomoGAN convention);
* sparse views and dose ranges for training (`ScanVariety`), the held-out benchmark's
  rows (`scan_rows`), and a raw detector (beam profile, gain, dark offset, read noise)
  for Data Exchange projections (`beam_profile`, `detector_counts`).

The slice streams (`simulate_slices`, `varied_slices`, `simulate_heldout`) give each
volume its own child seeds, so the first k volumes never depend on how many are asked for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
from skimage.transform import iradon, radon

from data_tools.errors import CTDatasetError
from data_tools.phantoms import SLICE_STEP, phantom_slice, random_phantom
from data_tools.phantoms_heldout import HELDOUT_SLICE_STEP, STYLE_FOV_MM, heldout_phantom

__all__ = [
    "BEAM_EDGE_COLUMNS",
    "BEAM_EDGE_ROWS",
    "COUNT_FLOOR",
    "DARK_LEVEL",
    "DARK_PATTERN",
    "DEFAULT_FOV_MM",
    "DEFAULT_VIEWS",
    "GAIN_PATTERN",
    "HELDOUT_VIEWS",
    "I0_MAX",
    "I0_ROWS",
    "READ_NOISE",
    "ROWS",
    "SPARSE_FACTOR",
    "ScanVariety",
    "beam_profile",
    "check_scan_settings",
    "dark_offset",
    "detector_counts",
    "low_dose_line_integrals",
    "scan_rows",
    "simulate_heldout",
    "simulate_scan",
    "simulate_slices",
    "slab_line_integrals",
    "sparse_views",
    "varied_slices",
    "view_angles",
]

#: Default number of projection angles in [0, 180).  For H = 256 the angular Nyquist rate is
#: ~pi/2 * H = 402 views; 360 (0.5 degree steps) keeps view-aliasing streaks faint while staying
#: fast.  Use fewer views for sparse-view data.
DEFAULT_VIEWS = 360
#: Default field of view: pixel_mm defaults to DEFAULT_FOV_MM / size, which puts the longest
#: line integrals through the body at p ~ 3.5-5 (realistic for clinical CT).
DEFAULT_FOV_MM = 256.0
#: Lowest photon count kept before taking the log (LoDoPaB-CT convention).
COUNT_FLOOR = 0.1

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
_UINT16_MAX = 65535

#: Held-out benchmark: full-scan projection angles in [0, 180) (training uses 360).
HELDOUT_VIEWS = 540
#: The sparse-view row keeps round(views / SPARSE_FACTOR) evenly spaced angles.
SPARSE_FACTOR = 8
#: Noisy rows: dataset name -> photons per ray; "sparse_ns" also uses its own view set.
I0_ROWS = {"i0_1e4_ns": 1e4, "i0_2e3_ns": 2e3, "sparse_ns": 1e4}
ROWS = tuple(I0_ROWS)


# --------------------------------------------------------------------------------------------
# geometry and settings
# --------------------------------------------------------------------------------------------


def view_angles(views: int) -> np.ndarray:
    """``views`` projection angles (degrees, float64) evenly spaced in [0, 180).

    The one definition of the angular sampling, shared by every generator and written to
    the files as ``theta``.
    """
    return np.arange(views, dtype=np.float64) * (180.0 / views)


def _default_pixel_mm(size: int) -> float:
    return DEFAULT_FOV_MM / size


def check_scan_settings(
    *,
    size: int,
    views: int,
    i0: float,
    pixel_mm: float | None,
    slices_per_volume: int,
    **counts: int,
) -> float:
    """Raise CTDatasetError for a bad setting; return the pixel size (default FOV / size).

    Validates up front (before any file is touched) what the scan functions would
    otherwise fail on late or silently: ``counts`` are named positive integers (checked
    first, in the order given), ``size`` an even integer >= 16, ``views`` and
    ``slices_per_volume`` integers >= 1, ``i0`` and ``pixel_mm`` positive and finite.
    """
    if pixel_mm is None:
        pixel_mm = _default_pixel_mm(size)
    for name, n in counts.items():
        if int(n) != n or n <= 0:
            raise CTDatasetError(f"{name} must be a positive integer, got {n}")
    if int(size) != size or size < 16 or size % 2:
        raise CTDatasetError(f"size must be an even integer >= 16, got {size}")
    if int(views) != views or views < 1:
        raise CTDatasetError(f"views must be an integer >= 1, got {views}")
    if not (math.isfinite(i0) and i0 > 0):
        raise CTDatasetError(f"i0 (photons per ray) must be a positive number, got {i0}")
    if not (math.isfinite(pixel_mm) and pixel_mm > 0):
        raise CTDatasetError(f"pixel_mm must be a positive number, got {pixel_mm}")
    if int(slices_per_volume) != slices_per_volume or slices_per_volume < 1:
        raise CTDatasetError(f"slices_per_volume must be an integer >= 1, got {slices_per_volume}")
    return pixel_mm


# --------------------------------------------------------------------------------------------
# CT: dose noise and reconstruction
# --------------------------------------------------------------------------------------------


def low_dose_line_integrals(p: np.ndarray, i0: float, rng: np.random.Generator) -> np.ndarray:
    """The LoDoPaB-CT noise model on line integrals ``p``: Poisson counts at ``i0`` photons
    per ray, clamped at ``COUNT_FLOOR``, back to line integrals by ``-log``."""
    counts = rng.poisson(i0 * np.exp(-p)).astype(np.float64)
    return -np.log(np.maximum(counts, COUNT_FLOOR) / i0)


def simulate_scan(
    mu: np.ndarray,
    theta: np.ndarray,
    i0: float,
    pixel_mm: float,
    rng: np.random.Generator,
    pair_rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, ...]:
    """Low-dose and noise-free FBP reconstructions (1/mm, float64) of attenuation image ``mu``.

    Both come from the same geometry and filter, so they differ only by Poisson noise of
    ``i0`` photons per ray (LoDoPaB-CT model, counts clamped at ``COUNT_FLOOR``).  Returns
    ``(noisy, clean)``; with ``pair_rng``, ``(noisy, clean, noisy2)`` where ``noisy2`` is a
    second scan whose noise is drawn from ``pair_rng`` (``rng`` is used exactly as without it,
    so ``noisy`` and ``clean`` do not change).
    """
    size = mu.shape[0]
    p = radon(mu, theta=theta, circle=True) * pixel_mm
    recon = dict(theta=theta, output_size=size, filter_name="ramp", circle=True)

    def low_dose(gen: np.random.Generator) -> np.ndarray:
        return iradon(low_dose_line_integrals(p, i0, gen), **recon) / pixel_mm

    noisy = low_dose(rng)
    clean = iradon(p, **recon) / pixel_mm
    if pair_rng is None:
        return noisy, clean
    return noisy, clean, low_dose(pair_rng)


def simulate_slices(
    n: int,
    size: int = 256,
    views: int = DEFAULT_VIEWS,
    i0: float = 1e4,
    pixel_mm: float | None = None,
    slices_per_volume: int = 16,
    rng: np.random.Generator | int | None = None,
    pairs: bool = False,
) -> Iterator[tuple[np.ndarray, ...]]:
    """Yield ``n`` (noisy, clean) float32 (size, size) reconstructions, one slice at a time.

    Slices come in runs of ``slices_per_volume`` adjacent slices (SLICE_STEP apart) through one
    random 3D phantom; each run uses its own child seed drawn from ``rng``, so the first k
    volumes do not depend on ``n``.  ``pixel_mm`` defaults to DEFAULT_FOV_MM / size.
    With ``pairs``, yields (noisy, clean, noisy2): ``noisy2`` is a second scan with noise from
    an extra child seed of each run, so ``noisy`` and ``clean`` are the same as without
    ``pairs``.  Arguments are validated immediately (CTDatasetError), not on first iteration.
    """
    pixel_mm = check_scan_settings(
        n=n, size=size, views=views, i0=i0, pixel_mm=pixel_mm, slices_per_volume=slices_per_volume
    )
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return _slices(
        int(n),
        int(size),
        int(views),
        float(i0),
        float(pixel_mm),
        int(slices_per_volume),
        gen,
        bool(pairs),
    )


def _slices(
    n: int,
    size: int,
    views: int,
    i0: float,
    pixel_mm: float,
    per_volume: int,
    rng: np.random.Generator,
    pairs: bool = False,
) -> Iterator[tuple[np.ndarray, ...]]:
    theta = view_angles(views)
    done = 0
    while done < n:
        vol_seed = np.random.SeedSequence(int(rng.integers(2**63)))
        phantom_rng, noise_rng = (np.random.default_rng(s) for s in vol_seed.spawn(2))
        # a third child seed (spawning more children never changes the first two)
        pair_rng = np.random.default_rng(vol_seed.spawn(1)[0]) if pairs else None
        z_center = (per_volume - 1) * SLICE_STEP / 2
        phantom = random_phantom(phantom_rng, z_center)
        for k in range(min(per_volume, n - done)):
            mu = phantom_slice(phantom, k * SLICE_STEP, size)
            scans = simulate_scan(mu, theta, i0, pixel_mm, noise_rng, pair_rng)
            yield tuple(scan.astype(np.float32) for scan in scans)
            done += 1


@dataclass(frozen=True)
class ScanVariety:
    """How the scans of a training set vary, so one model learns every dose and view count.

    Each volume is scanned ``draws`` times, each scan with independent Poisson noise at
    its own dose, log-uniform in ``[i0, i0_max]`` (users do not know their photon count),
    and with probability ``sparse_fraction`` from only ``v`` of the views (``v`` drawn
    from ``sparse_views``; each must divide the full view count). The clean target is
    always the full-view, noise-free reconstruction, so sparse scans teach the removal
    of view-aliasing streaks as well as noise. All slices of one scan share its
    settings, like the slices of a real scan (models with ``--depth`` > 1 read them
    together).
    """

    i0_max: float | None = None
    sparse_fraction: float = 0.0
    sparse_views: tuple[int, ...] = (45,)
    draws: int = 1

    @property
    def varied(self) -> bool:
        """Whether scans differ at all (otherwise `simulate_slices` makes the same data)."""
        return self.i0_max is not None or self.sparse_fraction > 0 or self.draws > 1

    def check(self, i0: float, views: int) -> None:
        """Raise CTDatasetError unless these settings fit a scan of ``i0`` and ``views``."""
        if self.i0_max is not None and not (math.isfinite(self.i0_max) and self.i0_max >= i0):
            raise CTDatasetError(f"i0_max must be a number >= i0 ({i0:g}), got {self.i0_max}")
        if not 0 <= self.sparse_fraction <= 1:
            raise CTDatasetError(f"sparse_fraction must be in [0, 1], got {self.sparse_fraction}")
        for v in self.sparse_views if self.sparse_fraction > 0 else ():
            if int(v) != v or v < 1 or views % v:
                raise CTDatasetError(f"sparse_views must divide views ({views}) evenly, got {v}")
        if int(self.draws) != self.draws or self.draws < 1:
            raise CTDatasetError(f"draws must be an integer >= 1, got {self.draws}")

    def scan(self, rng: np.random.Generator, i0: float, views: int) -> tuple[float, int]:
        """(photons per ray, view stride) of one scan."""
        dose = (
            i0
            if self.i0_max is None
            else float(np.exp(rng.uniform(np.log(i0), np.log(self.i0_max))))
        )
        stride = 1
        if rng.uniform() < self.sparse_fraction:
            stride = views // int(self.sparse_views[rng.integers(len(self.sparse_views))])
        return dose, stride


def varied_slices(
    n: int,
    size: int,
    views: int,
    i0: float,
    pixel_mm: float,
    per_volume: int,
    rng: np.random.Generator,
    variety: ScanVariety,
) -> Iterator[tuple[np.ndarray, ...]]:
    """`simulate_slices` under a `ScanVariety`: volume by volume, each scanned ``draws`` times.

    Yields ``n`` (noisy, clean) float32 pairs.  A volume's noise-free sinograms and clean
    reconstructions are computed once and reused by all its scans.  Arguments are trusted
    (validate with `check_scan_settings` and `ScanVariety.check` first).
    """
    theta = view_angles(views)
    recon = dict(output_size=size, filter_name="ramp", circle=True)
    done = 0
    while done < n:
        vol_seed = np.random.SeedSequence(int(rng.integers(2**63)))
        phantom_rng, noise_rng, scan_rng = (np.random.default_rng(s) for s in vol_seed.spawn(3))
        phantom = random_phantom(phantom_rng, (per_volume - 1) * SLICE_STEP / 2)
        count = min(per_volume, -(-(n - done) // variety.draws))
        sinograms = [
            radon(phantom_slice(phantom, k * SLICE_STEP, size), theta=theta, circle=True) * pixel_mm
            for k in range(count)
        ]
        cleans = [
            (iradon(p, theta=theta, **recon) / pixel_mm).astype(np.float32) for p in sinograms
        ]
        for _ in range(variety.draws):
            dose, stride = variety.scan(scan_rng, i0, views)
            for p, clean in zip(sinograms, cleans, strict=True):
                if done >= n:
                    return
                p_noisy = low_dose_line_integrals(p[:, ::stride], dose, noise_rng)
                noisy = iradon(p_noisy, theta=theta[::stride], **recon) / pixel_mm
                yield noisy.astype(np.float32), clean
                done += 1


# --------------------------------------------------------------------------------------------
# held-out benchmark rows
# --------------------------------------------------------------------------------------------


def sparse_views(views: int) -> int:
    """Number of views of the sparse row: round(views / SPARSE_FACTOR), at least 1."""
    return max(1, math.floor(views / SPARSE_FACTOR + 0.5))


def scan_rows(
    mu: np.ndarray,
    pixel_mm: float,
    views: int,
    rngs: dict[str, np.random.Generator],
) -> dict[str, np.ndarray]:
    """``clean`` and every noisy row (float64, 1/mm) for attenuation image ``mu``.

    ``rngs`` maps each name in `ROWS` to its noise stream.  Full-view rows share one noise-free
    sinogram; the sparse row is a separate radon transform at its own evenly spaced angles.
    """
    size = mu.shape[0]
    theta = view_angles(views)
    p = radon(mu, theta=theta, circle=True) * pixel_mm
    recon = dict(theta=theta, output_size=size, filter_name="ramp", circle=True)
    out = {"clean": iradon(p, **recon) / pixel_mm}
    for name in ROWS:
        if name == "sparse_ns":
            continue
        out[name] = (
            iradon(low_dose_line_integrals(p, I0_ROWS[name], rngs[name]), **recon) / pixel_mm
        )
    theta_s = view_angles(sparse_views(views))
    p_s = radon(mu, theta=theta_s, circle=True) * pixel_mm
    noisy = low_dose_line_integrals(p_s, I0_ROWS["sparse_ns"], rngs["sparse_ns"])
    out["sparse_ns"] = (
        iradon(noisy, theta=theta_s, output_size=size, filter_name="ramp", circle=True) / pixel_mm
    )
    return out


def simulate_heldout(
    style: str,
    n: int,
    rng: np.random.Generator,
    *,
    size: int = 256,
    views: int = HELDOUT_VIEWS,
    slices_per_volume: int = 4,
) -> Iterator[tuple[int, float, dict[str, np.ndarray]]]:
    """Yield ``(volume_in_style, z_mm, rows)`` for ``n`` slices of ``style``.

    ``rows`` holds float32 ``clean`` and the `ROWS`.  Volumes of ``slices_per_volume`` adjacent
    slices, each from its own child seed drawn from ``rng`` (phantom and one noise stream per
    row), so the first k volumes do not depend on ``n``.
    """
    pixel_mm = STYLE_FOV_MM[style] / size
    half_mm = STYLE_FOV_MM[style] / 2.0
    done, volume = 0, 0
    while done < n:
        seeds = np.random.SeedSequence(int(rng.integers(2**63))).spawn(1 + len(ROWS))
        phantom_rng = np.random.default_rng(seeds[0])
        rngs = {name: np.random.default_rng(s) for name, s in zip(ROWS, seeds[1:], strict=True)}
        z_center = (slices_per_volume - 1) * HELDOUT_SLICE_STEP / 2
        phantom = heldout_phantom(style, phantom_rng, z_center, size)
        for k in range(min(slices_per_volume, n - done)):
            z = k * HELDOUT_SLICE_STEP
            mu = phantom_slice(phantom, z, size)
            rows = scan_rows(mu, pixel_mm, views, rngs)
            yield volume, z * half_mm, {key: v.astype(np.float32) for key, v in rows.items()}
            done += 1
        volume += 1


# --------------------------------------------------------------------------------------------
# raw projections: beam, detector and counts
# --------------------------------------------------------------------------------------------


def slab_line_integrals(
    phantom_rng: np.random.Generator,
    theta: np.ndarray,
    rows: int,
    size: int,
    pixel_mm: float,
    on_row: Callable[[int], None] | None = None,
    style: str | None = None,
) -> tuple[np.ndarray, str]:
    """(n_angles, rows, size) float32 line integrals of ``rows`` adjacent phantom slices.

    What a parallel-beam detector with ``rows`` rows sees of one `random_phantom` drawn from
    ``phantom_rng``: slices one pixel apart (isotropic voxels), detector row ``r`` from slice
    ``r``.  Returns the projections and the phantom's kind; ``on_row(r + 1)`` is called after
    each slice (progress).  ``style`` (a `data_tools.phantoms_heldout.STYLES` name) draws a
    held-out phantom of that style instead, anatomy that training never sees.
    """
    step = 2.0 / size  # one pixel in the phantom's normalised units: isotropic voxels
    z_center = (rows - 1) * step / 2
    if style is None:
        phantom = random_phantom(phantom_rng, z_center=z_center)
    else:
        phantom = heldout_phantom(style, phantom_rng, z_center, size)
    p = np.empty((len(theta), rows, size), np.float32)
    for r in range(rows):
        mu = phantom_slice(phantom, r * step, size)
        p[:, r, :] = (radon(mu, theta=theta, circle=True) * pixel_mm).T  # (size, N) -> (N, size)
        if on_row is not None:
            on_row(r + 1)
    return p, phantom.kind


def beam_profile(rows: int, size: int, i0: float, rng: np.random.Generator) -> np.ndarray:
    """Mean photons per pixel without a sample (rows, size): smooth profile times gain.

    About ``i0`` at the detector centre, falling as a broad 2-D Gaussian to
    BEAM_EDGE_COLUMNS / BEAM_EDGE_ROWS at the edges, times a per-pixel gain pattern
    (GAIN_PATTERN spread): what flat fields record and flat-field correction removes.
    """
    u = (np.arange(size) - (size - 1) / 2) / (size / 2)  # -1..1 across columns
    v = (np.arange(rows) - (rows - 1) / 2) / max(rows / 2, 1)  # -1..1 down rows
    # a Gaussian exp(-x^2 / 2s^2) that falls to `edge` at x = 1, i.e. edge ** (x^2)
    profile = BEAM_EDGE_ROWS ** (v[:, None] ** 2) * BEAM_EDGE_COLUMNS ** (u[None, :] ** 2)
    gain = np.clip(1.0 + GAIN_PATTERN * rng.standard_normal((rows, size)), 0.8, 1.2)
    return i0 * profile * gain


def dark_offset(rows: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """Mean dark signal per pixel (rows, size): DARK_LEVEL plus a DARK_PATTERN fixed pattern.

    What dark fields record and dark correction subtracts; the same for every frame of a
    detector, so draw it once per instrument.
    """
    return DARK_LEVEL + DARK_PATTERN * rng.standard_normal((rows, size))


def detector_counts(
    mean: np.ndarray | None, dark: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """One measurement: Poisson photons plus dark offset and read noise, as uint16.

    ``mean`` is the expected photon count per pixel (None for a dark frame, no beam);
    ``dark`` the per-pixel dark offset; READ_NOISE Gaussian noise is added to every frame.
    """
    shape = dark.shape if mean is None else mean.shape
    photons = 0.0 if mean is None else rng.poisson(mean)
    noisy = photons + dark + READ_NOISE * rng.standard_normal(shape)
    return np.clip(np.rint(noisy), 0, _UINT16_MAX).astype(np.uint16)
