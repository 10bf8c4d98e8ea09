"""Writing the generated datasets: TomoGAN HDF5 stacks, Data Exchange projections, held-out rows.

One function per file layout (`make_ct_dataset`, `make_projection_dataset`,
`make_heldout_ct`); the CLI modules of the same names are thin wrappers around them.  Every
file is written under a temporary name by tomogan_tf's `atomic_path` and renamed onto its
final name only when complete, so an interrupted run never leaves a partial file (and the
next run removes temporaries of a killed one).  Settings are validated, and existing
outputs refused, before anything is computed.  The layouts themselves are documented in
the CLI modules' docstrings.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from contextlib import ExitStack
from typing import Any

import h5py
import numpy as np

from data_tools.cli import Progress
from data_tools.errors import CTDatasetError, OutputExistsError
from data_tools.phantoms import SLICE_STEP
from data_tools.phantoms_heldout import HELDOUT_SLICE_STEP, STYLE_FOV_MM, STYLES
from data_tools.scanner import (
    BEAM_EDGE_COLUMNS,
    BEAM_EDGE_ROWS,
    COUNT_FLOOR,
    DARK_LEVEL,
    DARK_PATTERN,
    DEFAULT_VIEWS,
    GAIN_PATTERN,
    HELDOUT_VIEWS,
    I0_MAX,
    I0_ROWS,
    READ_NOISE,
    ROWS,
    SPARSE_FACTOR,
    ScanVariety,
    beam_profile,
    check_scan_settings,
    dark_offset,
    detector_counts,
    simulate_heldout,
    simulate_slices,
    slab_line_integrals,
    sparse_views,
    varied_slices,
    view_angles,
)
from tomogan_tf.utils.files import atomic_path

__all__ = [
    "ANGLE_BLOCK",
    "CT_GENERATOR",
    "HELDOUT_GENERATOR",
    "KINDS",
    "PROJECTION_GENERATOR",
    "REFERENCE_NOTE",
    "check_output",
    "make_ct_dataset",
    "make_heldout_ct",
    "make_projection_dataset",
    "write_dxchange_file",
]

#: ``generator`` attribute of each file type (readers may check it; keep it stable).
CT_GENERATOR = "data_tools.make_ct_dataset 1.0"
PROJECTION_GENERATOR = "data_tools.make_projection_dataset 1.0"
HELDOUT_GENERATOR = "data_tools.make_heldout_ct 1.0"
#: Dataset kinds and the stacks each writes per split (train, test), in writing order.
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "supervised": (("ns", "gt"), ("ns", "gt")),
    "noisy": (("ns",), ("ns", "gt")),
    "pairs": (("ns", "ns2"), ("ns", "ns2", "gt")),
}
#: Projections are simulated and written this many angles at a time.
ANGLE_BLOCK = 16
REFERENCE_NOTE = (
    "Noise-free ground truth for evaluation only; never use for training. transmission = "
    "exp(-line_integrals) is what flat/dark-corrected exchange/data estimates."
)


def check_output(path: str, overwrite: bool) -> None:
    """Raise CTDatasetError unless ``path`` is a file name that may be written.

    Called before any work, so a wrong path costs nothing: a directory, a missing folder
    or (without ``overwrite``) an existing file (`OutputExistsError`) are refused.
    """
    if os.path.isdir(path):
        raise CTDatasetError(f"output path is a directory: {path}")
    if os.path.exists(path) and not overwrite:
        raise OutputExistsError(f"output file exists: {path} (pass --overwrite to replace it)")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CTDatasetError(f"output directory does not exist: {directory}")


# --------------------------------------------------------------------------------------------
# TomoGAN HDF5: train_ns / train_gt / test_ns / test_gt
# --------------------------------------------------------------------------------------------


def make_ct_dataset(
    path: str | os.PathLike[str],
    n_train: int = 64,
    n_test: int = 16,
    size: int = 256,
    views: int = DEFAULT_VIEWS,
    i0: float = 1e4,
    pixel_mm: float | None = None,
    slices_per_volume: int = 16,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
    kind: str = "supervised",
    variety: ScanVariety | None = None,
) -> None:
    """Write a synthetic low-dose CT dataset to ``path`` in the TomoGAN HDF5 layout.

    ``kind`` picks the stacks (see `KINDS` and `data_tools.make_ct_dataset`): ``"supervised"``
    (noisy/clean pairs), ``"noisy"`` (noisy training slices only) or ``"pairs"`` (two
    independent noisy scans per training slice); test splits always include ``test_gt``,
    for evaluation only.  Deterministic for given arguments.  Train and test use
    independent child seeds of ``seed``, so changing ``n_train`` leaves the test set
    unchanged.  The file is written to a temporary name next to ``path`` and renamed when
    complete, so an interrupted run never leaves a partial file at ``path``.  Raises
    CTDatasetError (OutputExistsError if ``path`` exists and not ``overwrite``).
    ``variety`` (supervised only) varies dose, view count and noise draws per scan
    (`ScanVariety`); without it every scan has ``i0`` photons and all ``views``.
    ``progress`` shows a progress bar (`Progress`).
    """
    path = os.fspath(path)
    if kind not in KINDS:
        raise CTDatasetError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    pixel_mm = check_scan_settings(
        n_train=n_train,
        n_test=n_test,
        size=size,
        views=views,
        i0=i0,
        pixel_mm=pixel_mm,
        slices_per_volume=slices_per_volume,
    )
    if int(seed) != seed or seed < 0:
        raise CTDatasetError(f"seed must be a non-negative integer, got {seed}")
    variety = variety or ScanVariety()
    variety.check(float(i0), int(views))
    if variety.varied and kind != "supervised":
        raise CTDatasetError("dose ranges, sparse views and draws apply to --kind supervised")
    check_output(path, overwrite)

    train_seed, test_seed = np.random.SeedSequence(int(seed)).spawn(2)
    theta = view_angles(views)
    splits: Sequence[tuple[str, int, np.random.SeedSequence]] = (
        ("train", int(n_train), train_seed),
        ("test", int(n_test), test_seed),
    )
    bar = Progress(int(n_train) + int(n_test), progress, "slice")
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs.update(
                {
                    "i0": float(i0),
                    "views": int(views),
                    "pixel_mm": float(pixel_mm),
                    "seed": int(seed),
                    "size": int(size),
                    "slices_per_volume": int(slices_per_volume),
                    "slice_step_mm": SLICE_STEP * size * pixel_mm / 2,
                    "n_train": int(n_train),
                    "n_test": int(n_test),
                    "units": "1/mm",
                    "generator": CT_GENERATOR,
                    "description": (
                        "Synthetic low-dose CT: anatomy-like 3D ellipsoid phantoms, parallel-beam "
                        "radon, Poisson noise counts~Poisson(i0*exp(-p)) clamped >= 0.1; ns/gt = "
                        "ramp FBP of noisy/noise-free sinograms (same views)."
                    ),
                }
            )
            if variety.varied:
                f.attrs.update(
                    {
                        "i0_max": float(variety.i0_max or i0),
                        "sparse_fraction": float(variety.sparse_fraction),
                        "sparse_views": np.asarray(variety.sparse_views, np.int64),
                        "draws": int(variety.draws),
                        "variety": (
                            "each volume scanned `draws` times, dose log-uniform in"
                            " [i0, i0_max], a `sparse_fraction` of the scans from only"
                            " `sparse_views` views; gt = full-view noise-free FBP"
                        ),
                    }
                )
            if kind != "supervised":  # supervised files stay bit-identical to older ones
                f.attrs["kind"] = kind
                f.attrs["training_keys"] = ",".join(f"train_{s}" for s in KINDS[kind][0])
                f.attrs["note"] = (
                    "Self-supervised dataset: training reads only the train_* stacks; "
                    "test_gt is for evaluation only."
                )
            f.create_dataset("theta", data=theta).attrs["units"] = "degrees"
            done = 0
            for (name, n, split_seed), stacks in zip(splits, KINDS[kind], strict=True):
                shape = (n, size, size)
                datasets = {
                    stack: f.create_dataset(
                        f"{name}_{stack}", shape, dtype="f4", chunks=(1, size, size)
                    )
                    for stack in stacks
                }
                if kind != "supervised" and "gt" in datasets:
                    datasets["gt"].attrs["use"] = "evaluation only; never read for training"
                if variety.varied:
                    stream = varied_slices(
                        n,
                        int(size),
                        int(views),
                        float(i0),
                        float(pixel_mm),
                        int(slices_per_volume),
                        np.random.default_rng(split_seed),
                        variety,
                    )
                else:
                    stream = simulate_slices(
                        n,
                        size,
                        views,
                        i0,
                        pixel_mm,
                        slices_per_volume,
                        np.random.default_rng(split_seed),
                        pairs="ns2" in datasets,
                    )
                for i, scans in enumerate(stream):
                    for stack, image in zip(("ns", "gt", "ns2"), scans, strict=False):
                        if stack in datasets:
                            datasets[stack][i] = image
                    done += 1
                    bar.update(done)
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------
# Data Exchange: raw projections, flats and darks
# --------------------------------------------------------------------------------------------


def write_dxchange_file(
    tmp: str,
    p: np.ndarray,
    theta: np.ndarray,
    beam: np.ndarray,
    dark: np.ndarray,
    n_flats: int,
    n_darks: int,
    noise: np.random.SeedSequence,
    attrs: dict,
    progress: tuple[Progress, int],
) -> None:
    """Write one Data Exchange file at ``tmp``: line integrals ``p`` measured with fresh noise.

    The noise of projections, flats and darks comes from three children of ``noise``, so two
    calls with different seeds are two measurements of one scene (Noise2Noise pairs).
    ``beam`` and ``dark`` are the instrument (`beam_profile`, `dark_offset`); ``attrs`` the
    root attributes (with ``phantom_kind`` and ``description``).  ``progress`` is the bar and
    the steps done before this file: one step per ANGLE_BLOCK angles.
    """
    proj_rng, flat_rng, dark_rng = (np.random.default_rng(s) for s in noise.spawn(3))
    n, rows, size = p.shape
    chunks = (1, rows, size)
    bar, done = progress
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
            mean = beam * np.exp(-p[block].astype(np.float64))
            data[block] = detector_counts(mean, dark, proj_rng)
            done += 1
            bar.update(done)
        if n_flats:
            frames = np.stack([detector_counts(beam, dark, flat_rng) for _ in range(n_flats)])
            ds = ex.create_dataset("data_white", data=frames, chunks=chunks)
            ds.attrs.update({"units": "counts", "axes": "theta:y:x"})
        if n_darks:
            frames = np.stack([detector_counts(None, dark, dark_rng) for _ in range(n_darks)])
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
    style: str | None = None,
) -> None:
    """Write synthetic Data Exchange projections to ``path`` (and a noise repeat to ``pair``).

    See `data_tools.make_projection_dataset` for the layout and physics. ``pixel_mm``
    defaults to DEFAULT_FOV_MM / size, or the style's field of view / size for a held-out
    ``style`` (`data_tools.phantoms_heldout.STYLES`; None: training's anatomy).
    Deterministic for given arguments (the first file is the same with or without
    ``pair``). Files are written under temporary names and
    renamed when all are complete, in order. Raises CTDatasetError (OutputExistsError if
    an output exists and not ``overwrite``).
    """
    path = os.fspath(path)
    pair = None if pair is None else os.fspath(pair)
    if style is not None and style not in STYLES:
        raise CTDatasetError(f"unknown style {style!r} (choose from {', '.join(STYLES)})")
    if style is not None and pixel_mm is None:
        pixel_mm = STYLE_FOV_MM[style] / size
    pixel_mm = check_scan_settings(
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
        check_output(out, overwrite)

    n_angles, rows, size, flats, darks = (int(x) for x in (n_angles, rows, size, flats, darks))
    scene, *noises = np.random.SeedSequence(int(seed)).spawn(3)
    phantom_rng, instrument_rng = (np.random.default_rng(s) for s in scene.spawn(2))
    theta = view_angles(n_angles)
    blocks = -(-n_angles // ANGLE_BLOCK)
    bar = Progress(rows + len(outputs) * blocks, progress, "step")
    try:
        with ExitStack() as stack:
            # entered last to first, so the renames at the end happen first to last
            tmps = [stack.enter_context(atomic_path(out)) for out in reversed(outputs)][::-1]
            p, kind = slab_line_integrals(
                phantom_rng, theta, rows, size, float(pixel_mm), on_row=bar.update, style=style
            )
            beam = beam_profile(rows, size, float(i0), instrument_rng)
            dark = dark_offset(rows, size, instrument_rng)
            for k, tmp in enumerate(tmps):
                attrs = {
                    "generator": PROJECTION_GENERATOR,
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
                step = (bar, rows + k * blocks)
                write_dxchange_file(tmp, p, theta, beam, dark, flats, darks, noises[k], attrs, step)
    finally:
        bar.close()


# --------------------------------------------------------------------------------------------
# held-out benchmark: clean + noisy rows per style
# --------------------------------------------------------------------------------------------


def _parse_styles(styles: str | Sequence[str]) -> tuple[str, ...]:
    names = [s.strip() for s in styles.split(",")] if isinstance(styles, str) else list(styles)
    names = [s for s in names if s]
    bad = [s for s in names if s not in STYLES]
    if bad or not names or len(set(names)) != len(names):
        raise CTDatasetError(
            f"styles must be distinct names from {', '.join(STYLES)}, got {','.join(names) or '-'}"
        )
    return tuple(names)


def _check_settings(n_per_style: int, slices_per_volume: int, size: int, views: int, seed: int):
    for name, value, low in (
        ("n_per_style", n_per_style, 1),
        ("slices_per_volume", slices_per_volume, 1),
        ("views", views, SPARSE_FACTOR),
        ("seed", seed, 0),
    ):
        if int(value) != value or value < low:
            raise CTDatasetError(f"{name} must be an integer >= {low}, got {value}")
    if int(size) != size or size < 16 or size % 2:
        raise CTDatasetError(f"size must be an even integer >= 16, got {size}")


def make_heldout_ct(
    path: str | os.PathLike[str],
    n_per_style: int = 8,
    slices_per_volume: int = 4,
    size: int = 256,
    views: int = HELDOUT_VIEWS,
    styles: str | Sequence[str] = STYLES,
    seed: int = 0,
    overwrite: bool = False,
    progress: bool = False,
) -> None:
    """Write the held-out benchmark file to ``path`` (layout: `data_tools.make_heldout_ct`).

    Slices are grouped by style (in the order given) and by volume.  Each style draws from
    its own child seed of ``seed`` (fixed by its place in `STYLES`), so a subset of styles
    leaves every style's slices unchanged.  Deterministic; written to a temporary name next
    to ``path`` and renamed when complete.  Raises CTDatasetError (OutputExistsError if
    ``path`` exists and not ``overwrite``).
    """
    path = os.fspath(path)
    names = _parse_styles(styles)
    _check_settings(n_per_style, slices_per_volume, size, views, seed)
    check_output(path, overwrite)
    n_per_style, size, views = int(n_per_style), int(size), int(views)
    per_volume = int(slices_per_volume)
    total = n_per_style * len(names)
    style_seeds = dict(
        zip(STYLES, np.random.SeedSequence(int(seed)).spawn(len(STYLES)), strict=True)
    )
    bar = Progress(total, progress, "slice")
    n_sparse = sparse_views(views)
    attrs: dict[str, Any] = {
        "generator": HELDOUT_GENERATOR,
        "training_generator": CT_GENERATOR,
        "seed": int(seed),
        "size": size,
        "views": views,
        "sparse_views": n_sparse,
        "sparse_factor": SPARSE_FACTOR,
        "n_per_style": n_per_style,
        "slices_per_volume": per_volume,
        "styles": ",".join(names),
        "rows": ",".join(ROWS),
        "units": "1/mm",
        "count_floor": COUNT_FLOOR,
        "protocol": (
            "score every noisy row (and its denoised version) against 'clean'; PSNR/SSIM "
            "data_range = max - min of each clean slice"
        ),
        "description": (
            "Held-out synthetic CT: phantom styles, textures, supports, pixel sizes and view "
            "counts unlike data_tools.make_ct_dataset. clean = ramp FBP of the noise-free "
            f"{views}-view parallel-beam sinogram; noisy rows: counts~Poisson(i0*exp(-p)) "
            f"clamped >= {COUNT_FLOOR}, same FBP; sparse_ns uses {n_sparse} evenly spaced "
            "views in [0, 180)."
        ),
    }
    attrs["i0_full_views"] = np.array([I0_ROWS["i0_1e4_ns"], I0_ROWS["i0_2e3_ns"]])
    attrs["sparse_i0"] = I0_ROWS["sparse_ns"]
    for style in names:
        fov = STYLE_FOV_MM[style]
        attrs[f"pixel_mm_{style}"] = fov / size
        attrs[f"fov_mm_{style}"] = fov
        attrs[f"slice_step_mm_{style}"] = HELDOUT_SLICE_STEP * fov / 2
    try:
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
            f.attrs.update(attrs)
            shape = (total, size, size)
            stacks = {
                key: f.create_dataset(key, shape, dtype="f4", chunks=(1, size, size))
                for key in ("clean", *ROWS)
            }
            stacks["clean"].attrs["views"] = views
            stacks["clean"].attrs["note"] = "noise-free reference for every row"
            for row, i0 in I0_ROWS.items():
                stacks[row].attrs["i0"] = i0
                stacks[row].attrs["views"] = n_sparse if row == "sparse_ns" else views
            style_col = np.empty(total, dtype="S6")
            volume_col = np.empty(total, dtype=np.int32)
            pixel_col = np.empty(total, dtype=np.float32)
            z_col = np.empty(total, dtype=np.float32)
            done, volume_base = 0, 0
            for style in names:
                stream = simulate_heldout(
                    style,
                    n_per_style,
                    np.random.default_rng(style_seeds[style]),
                    size=size,
                    views=views,
                    slices_per_volume=per_volume,
                )
                last = -1
                for vol, z_mm, rows in stream:
                    for key, image in rows.items():
                        stacks[key][done] = image
                    style_col[done] = style.encode()
                    volume_col[done] = volume_base + vol
                    pixel_col[done] = STYLE_FOV_MM[style] / size
                    z_col[done] = z_mm
                    last = vol
                    done += 1
                    bar.update(done)
                volume_base += last + 1
            f.create_dataset("style", data=style_col)
            f.create_dataset("volume", data=volume_col)
            f.create_dataset("pixel_mm", data=pixel_col)
            f.create_dataset("z_mm", data=z_col).attrs["note"] = "position within the volume"
    finally:
        bar.close()
