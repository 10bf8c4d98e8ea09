"""Tests for data_tools.make_projection_dataset (tiny detectors: the file runs in seconds).

The library is tested through `data_tools.writers` and `data_tools.scanner`; the CLI as a
user runs it.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import correlation as _corr
from helpers import file_sha256 as _sha
from helpers import run_module

from data_tools import make_projection_dataset as cli
from data_tools import scanner, writers
from data_tools.errors import CTDatasetError, OutputExistsError
from tomogan_tf.data.sources import open_dxchange

SMALL = dict(n_angles=12, rows=4, size=32, i0=2000.0, flats=4, darks=3)
KEYS = ("exchange/data", "exchange/data_white", "exchange/data_dark", "exchange/theta")
REFS = ("reference/transmission", "reference/line_integrals")


def _read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {key: f[key][()] for key in (*KEYS, *REFS) if key in f}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_module("data_tools.make_projection_dataset", *args, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("proj")
    path, pair = folder / "proj.h5", folder / "proj2.h5"
    writers.make_projection_dataset(path, pair=pair, seed=3, **SMALL)
    return path, pair


def test_layout_shapes_dtypes_and_attributes(files: tuple[Path, Path]) -> None:
    path = files[0]
    assert sorted(p.name for p in path.parent.iterdir()) == ["proj.h5", "proj2.h5"]  # no temps
    with h5py.File(path, "r") as f:
        assert set(f["exchange"]) == {"data", "data_white", "data_dark", "theta"}
        assert f["exchange/data"].shape == (12, 4, 32)
        assert f["exchange/data_white"].shape == (4, 4, 32)
        assert f["exchange/data_dark"].shape == (3, 4, 32)
        for key in KEYS[:3]:
            assert f[key].dtype == np.uint16 and f[key].attrs["units"] == "counts"
        assert f["exchange/data"].chunks == (1, 4, 32)
        np.testing.assert_allclose(f["exchange/theta"][()], np.arange(12) * 15.0)
        assert f["exchange/theta"].attrs["units"] == "degrees"
        for key in REFS:
            assert f[key].shape == (12, 4, 32) and f[key].dtype == np.float32
        assert "never use for training" in f["reference"].attrs["note"]
        np.testing.assert_allclose(
            f["reference/transmission"][()], np.exp(-f["reference/line_integrals"][()]), rtol=1e-6
        )
        attrs = dict(f.attrs)
    assert attrs["generator"] == writers.PROJECTION_GENERATOR and attrs["seed"] == 3
    assert (attrs["n_angles"], attrs["rows"], attrs["size"]) == (12, 4, 32)
    assert (attrs["i0"], attrs["n_flats"], attrs["n_darks"]) == (2000.0, 4, 3)
    assert attrs["pixel_mm"] == pytest.approx(scanner.DEFAULT_FOV_MM / 32)
    assert attrs["pair"] == "proj2.h5" and attrs["realisation"] == 1
    assert attrs["phantom_kind"] in ("thorax", "abdomen", "head")


def test_line_integrals_are_a_consistent_sinogram(files: tuple[Path, Path]) -> None:
    p = _read(files[0])["reference/line_integrals"]
    assert p.min() >= -1e-3 and 1.0 < p.max() < 10.0
    # radon conserves mass: every angle sees the same total attenuation of a slice
    totals = p.sum(axis=2)  # (angle, row)
    assert np.all(totals.std(axis=0) < 0.02 * totals.mean(axis=0))
    # detector rows are adjacent slices: similar, not identical
    assert _corr(p[:, 0], p[:, 1]) > 0.9 and not np.array_equal(p[:, 0], p[:, 1])


def test_counts_beam_and_dark_levels(files: tuple[Path, Path]) -> None:
    data = _read(files[0])
    flats = data["exchange/data_white"].astype(float)
    darks = data["exchange/data_dark"].astype(float)
    assert abs(darks.mean() - scanner.DARK_LEVEL) < 1.0
    assert darks.std() < 3 * (scanner.DARK_PATTERN + scanner.READ_NOISE)
    beam = (flats - darks.mean(axis=0)).mean(axis=0)  # (rows, columns)
    centre = beam[:, 14:18].mean()
    assert 0.9 * 2000 < centre < 1.05 * 2000
    # a smooth non-uniform profile: darker towards the column edges
    assert beam[:, :2].mean() / centre == pytest.approx(scanner.BEAM_EDGE_COLUMNS, abs=0.06)
    assert beam[:, -2:].mean() / centre == pytest.approx(scanner.BEAM_EDGE_COLUMNS, abs=0.06)
    raw = data["exchange/data"]
    assert raw.min() > 0 and raw.max() < flats.max() + 200  # the sample only absorbs


def test_flat_dark_corrected_data_match_the_reference(files: tuple[Path, Path]) -> None:
    ref = _read(files[0])
    with open_dxchange(files[0]) as source:
        transmission = source.read(list(range(12)))
    error = transmission - ref["reference/transmission"]
    assert abs(float(error.mean())) < 0.01  # unbiased on average
    assert float(np.abs(error).mean()) < 0.05  # photon noise of ~2000 counts
    # without flat-field correction the beam profile would show: far larger errors
    raw = ref["exchange/data"] - ref["exchange/data_dark"].mean(axis=0)
    assert np.abs(raw / 2000.0 - ref["reference/transmission"]).mean() > 3 * np.abs(error).mean()
    with open_dxchange(files[0], minus_log=True) as source:
        line_integrals = source.read(list(range(12)))
    assert abs(float((line_integrals - ref["reference/line_integrals"]).mean())) < 0.05


def test_pair_has_independent_noise_and_identical_reference(files: tuple[Path, Path]) -> None:
    first, second = _read(files[0]), _read(files[1])
    for key in (*REFS, "exchange/theta"):
        assert np.array_equal(first[key], second[key]), key
    for key in KEYS[:3]:
        assert first[key].shape == second[key].shape and not np.array_equal(first[key], second[key])
    ref = first["reference/transmission"]
    with open_dxchange(files[0]) as a, open_dxchange(files[1]) as b:
        t1, t2 = a.read(list(range(12))), b.read(list(range(12)))
    # ~1500 pixels: independent noise gives |corr| ~ 0.03; shared noise would give ~1
    assert abs(_corr(t1 - ref, t2 - ref)) < 0.15
    noise1, noise2 = np.mean((t1 - ref) ** 2), np.mean((t2 - ref) ** 2)
    assert 0.7 < noise2 / noise1 < 1.4  # the same dose
    with h5py.File(files[1], "r") as f:
        assert f.attrs["pair"] == "proj.h5" and f.attrs["realisation"] == 2


def test_deterministic_and_independent_of_pair(files: tuple[Path, Path], tmp_path: Path) -> None:
    alone, other = tmp_path / "alone.h5", tmp_path / "other.h5"
    writers.make_projection_dataset(alone, seed=3, **SMALL)
    writers.make_projection_dataset(other, seed=4, **SMALL)
    first, again, third = _read(files[0]), _read(alone), _read(other)
    for key in (*KEYS, *REFS):
        assert np.array_equal(first[key], again[key]), key
        if key != "exchange/theta":
            assert not np.array_equal(first[key], third[key]), key


def test_no_flats_no_darks(tmp_path: Path) -> None:
    out = tmp_path / "bare.h5"
    writers.make_projection_dataset(out, **{**SMALL, "flats": 0, "darks": 0, "n_angles": 3})
    with h5py.File(out, "r") as f:
        assert set(f["exchange"]) == {"data", "theta"}
        assert (f.attrs["n_flats"], f.attrs["n_darks"]) == (0, 0)
    with open_dxchange(out) as source:
        assert (source.info.n_flats, source.info.n_darks) == (0, 0)
        assert source.read([0]).mean() > scanner.DARK_LEVEL  # raw counts, uncorrected


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ({"n_angles": 0}, "n_angles must be a positive integer"),
        ({"rows": 0}, "rows must be a positive integer"),
        ({"size": 15}, "size must be an even integer"),
        ({"i0": 0.0}, "i0"),
        ({"i0": 1e6}, "i0 must be at most"),
        ({"flats": -1}, "flats must be an integer >= 0"),
        ({"darks": 1.5}, "darks must be an integer >= 0"),
        ({"seed": -1}, "seed must be a non-negative integer"),
        ({"pixel_mm": -2.0}, "pixel_mm"),
    ],
)
def test_bad_arguments_raise_clear_error(tmp_path: Path, bad: dict, problem: str) -> None:
    with pytest.raises(CTDatasetError, match=re.escape(problem)):
        writers.make_projection_dataset(tmp_path / "bad.h5", **{**SMALL, **bad})
    assert list(tmp_path.iterdir()) == []


def test_refuses_existing_outputs_and_same_pair(tmp_path: Path) -> None:
    out, pair = tmp_path / "a.h5", tmp_path / "b.h5"
    with pytest.raises(CTDatasetError, match="different file"):
        writers.make_projection_dataset(out, pair=out, **SMALL)
    pair.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match=re.escape(str(pair))):
        writers.make_projection_dataset(out, pair=pair, **SMALL)
    assert pair.read_bytes() == b"precious" and not out.exists()
    writers.make_projection_dataset(out, pair=pair, overwrite=True, **{**SMALL, "n_angles": 2})
    assert _read(pair)["exchange/data"].shape == (2, 4, 32)


def test_failure_mid_run_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = writers.write_dxchange_file
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:  # the first file's temporary is complete by now
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(writers, "write_dxchange_file", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        writers.make_projection_dataset(tmp_path / "a.h5", pair=tmp_path / "b.h5", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_cli_module_reexports_the_library() -> None:
    assert cli.make_projection_dataset is writers.make_projection_dataset
    assert cli.GENERATOR == writers.PROJECTION_GENERATOR
    assert (cli.DARK_LEVEL, cli.READ_NOISE, cli.I0_MAX) == (
        scanner.DARK_LEVEL,
        scanner.READ_NOISE,
        scanner.I0_MAX,
    )
    assert all(hasattr(cli, name) for name in cli.__all__)


def test_cli_writes_files_and_refuses_to_overwrite(tmp_path: Path) -> None:
    args = ("--n_angles", "6", "--rows", "2", "--size", "32", "--flats", "2", "--darks", "2")
    proc = _cli("--out", "p.h5", "--pair", "p2.h5", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "wrote p.h5 and p2.h5" in proc.stdout and "(6, 2, 32) uint16" in proc.stdout
    assert proc.stdout.count("\n") == 1  # not a terminal: no progress bar
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5", "p2.h5"]
    before = _sha(tmp_path / "p.h5")
    again = _cli("--out", "p.h5", *args, cwd=tmp_path)
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("make_projection_dataset: error: output file")
    assert "p.h5" in lines[0] and "--overwrite" in lines[0]
    assert _sha(tmp_path / "p.h5") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.h5", "p2.h5"]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (("--rows", "0"), "rows must be a positive integer, got 0"),
        (("--rows", "two"), "flag --rows=two: invalid literal for int() with base 10: 'two'"),
    ],
)
def test_cli_bad_arguments_exit_2(tmp_path: Path, bad: tuple[str, str], message: str) -> None:
    proc = _cli("--out", "x.h5", *bad, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"make_projection_dataset: error: {message}"]
    assert list(tmp_path.iterdir()) == []
