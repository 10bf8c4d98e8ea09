"""Tests for data_tools.make_heldout_ct (tiny images and few views: runs in seconds)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import file_sha256 as _sha
from helpers import run_module

from data_tools import make_heldout_ct as cli
from data_tools import metrics, phantoms, phantoms_heldout, scanner, writers
from data_tools.errors import CTDatasetError, OutputExistsError

SMALL = dict(n_per_style=2, slices_per_volume=2, size=32, views=16)
STACKS = ("clean", *scanner.ROWS)


def _read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {key: f[key][()] for key in f}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_module("data_tools.make_heldout_ct", *args, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def heldout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("heldout") / "heldout.h5"
    writers.make_heldout_ct(path, seed=3, **SMALL)
    return path


def test_layout_columns_and_attributes(heldout: Path) -> None:
    assert sorted(p.name for p in heldout.parent.iterdir()) == ["heldout.h5"]  # no temps
    n = 2 * len(phantoms_heldout.STYLES)
    with h5py.File(heldout, "r") as f:
        assert set(f) == {*STACKS, "style", "volume", "pixel_mm", "z_mm"}
        for key in STACKS:
            assert f[key].shape == (n, 32, 32) and f[key].dtype == np.float32
            assert f[key].chunks == (1, 32, 32)
        assert f["clean"].attrs["views"] == 16
        assert f["sparse_ns"].attrs["views"] == scanner.sparse_views(16) == 2
        for row, i0 in scanner.I0_ROWS.items():
            assert f[row].attrs["i0"] == i0
        style = f["style"].asstr()[()]
        volume, pixel_mm = f["volume"][()], f["pixel_mm"][()]
        attrs = dict(f.attrs)
    assert list(style) == [s for s in phantoms_heldout.STYLES for _ in range(2)]
    assert np.array_equal(volume, np.arange(n) // 2)  # one volume of 2 slices per style
    for name in phantoms_heldout.STYLES:
        fov = phantoms_heldout.STYLE_FOV_MM[name]
        np.testing.assert_allclose(pixel_mm[style == name], fov / 32, rtol=1e-6)
        assert attrs[f"pixel_mm_{name}"] == fov / 32 and attrs[f"fov_mm_{name}"] == fov
    assert attrs["generator"] == writers.HELDOUT_GENERATOR
    assert attrs["training_generator"] == writers.CT_GENERATOR
    assert (attrs["views"], attrs["sparse_views"], attrs["seed"]) == (16, 2, 3)
    assert attrs["styles"] == ",".join(phantoms_heldout.STYLES)
    assert attrs["rows"] == ",".join(scanner.ROWS)


def test_rows_share_the_content_and_differ_in_noise(heldout: Path) -> None:
    data = _read(heldout)
    clean = data["clean"]
    assert 0.01 < clean.max() < 0.2 and clean.min() > -0.01
    psnr = {row: metrics.psnr_per_slice(data[row], clean) for row in scanner.ROWS}
    assert all(np.all(np.isfinite(p)) for p in psnr.values())
    # 5x the photons: less noise on every slice
    assert np.all(psnr["i0_2e3_ns"] < psnr["i0_1e4_ns"])
    # 2 of 16 views: streaks on top of the noise
    assert psnr["sparse_ns"].mean() < psnr["i0_1e4_ns"].mean()


def test_a_subset_of_styles_leaves_each_style_unchanged(heldout: Path, tmp_path: Path) -> None:
    subset = tmp_path / "subset.h5"
    writers.make_heldout_ct(subset, seed=3, styles="shepp,knee", **SMALL)
    full, part = _read(heldout), _read(subset)
    full_style = full["style"].astype(str)
    assert list(part["style"].astype(str)) == ["shepp"] * 2 + ["knee"] * 2
    for name, rows in (("shepp", slice(0, 2)), ("knee", slice(2, 4))):
        for key in STACKS:
            assert np.array_equal(part[key][rows], full[key][full_style == name]), (name, key)
    assert list(part["volume"]) == [0, 0, 1, 1]  # ids follow the order written


def test_deterministic_for_a_seed(heldout: Path, tmp_path: Path) -> None:
    again, other = tmp_path / "again.h5", tmp_path / "other.h5"
    writers.make_heldout_ct(again, seed=3, **SMALL)
    writers.make_heldout_ct(other, seed=4, **SMALL)
    first, second, third = _read(heldout), _read(again), _read(other)
    for key in STACKS:
        assert np.array_equal(first[key], second[key]), key
        assert not np.allclose(first[key], third[key]), key


def test_heldout_phantoms_render_inside_the_circle() -> None:
    size = 48
    idx = np.arange(size) - size / 2 + 0.5
    radius = np.hypot(idx[:, None], idx[None, :]) / (size / 2)
    for k, name in enumerate(phantoms_heldout.STYLES):
        phantom = phantoms_heldout.heldout_phantom(name, np.random.default_rng(k), size=size)
        assert isinstance(phantom, phantoms.Phantom3D) and phantom.kind == name
        mu = phantoms.phantom_slice(phantom, 0.0, size)
        assert mu.max() > 0.02 and np.all(mu[radius > 1.0] == 0.0), name
    with pytest.raises(CTDatasetError, match="unknown style 'foot'"):
        phantoms_heldout.heldout_phantom("foot", np.random.default_rng(0))


@pytest.mark.parametrize(
    ("bad", "problem"),
    [
        ({"styles": "knee,foot"}, "styles must be distinct names"),
        ({"styles": "knee,knee"}, "styles must be distinct names"),
        ({"views": 4}, "views must be an integer >= 8, got 4"),
        ({"n_per_style": 0}, "n_per_style must be an integer >= 1"),
        ({"size": 15}, "size must be an even integer >= 16"),
        ({"seed": -1}, "seed must be an integer >= 0"),
    ],
)
def test_bad_arguments_raise_clear_error(tmp_path: Path, bad: dict, problem: str) -> None:
    with pytest.raises(CTDatasetError, match=re.escape(problem)):
        writers.make_heldout_ct(tmp_path / "bad.h5", **{**SMALL, **bad})
    assert list(tmp_path.iterdir()) == []


def test_refuses_an_existing_output(tmp_path: Path) -> None:
    out = tmp_path / "h.h5"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match=re.escape(str(out))):
        writers.make_heldout_ct(out, **SMALL)
    assert out.read_bytes() == b"precious"


def test_cli_module_reexports_the_library() -> None:
    assert cli.make_heldout_ct is writers.make_heldout_ct
    assert cli.GENERATOR == writers.HELDOUT_GENERATOR
    assert cli.heldout_phantom is phantoms_heldout.heldout_phantom
    assert cli.scan_rows is scanner.scan_rows and cli.psnr_per_slice is metrics.psnr_per_slice
    assert cli.STYLES == phantoms_heldout.STYLES and cli.ROWS == scanner.ROWS
    assert all(hasattr(cli, name) for name in cli.__all__)


def test_cli_reports_psnr_per_style_and_refuses_to_overwrite(tmp_path: Path) -> None:
    args = ("--n_per_style", "2", "--slices_per_volume", "2", "--size", "32", "--views", "16")
    proc = _cli("--out", "h.h5", "--styles", "shepp,pelvis", *args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3  # summary + one line per style, no progress bar
    assert lines[0].startswith("make_heldout_ct: wrote h.h5: (4, 32, 32) float32 [1/mm]")
    assert "2 volumes, styles shepp,pelvis" in lines[0]
    data = _read(tmp_path / "h.h5")
    style = data["style"].astype(str)
    for line, name in zip(lines[1:], ("shepp", "pelvis"), strict=True):
        psnr = metrics.psnr_per_slice(data["i0_1e4_ns"], data["clean"])[style == name]
        assert line.startswith(f"  {name:7s}   2 slices: i0_1e4_ns {psnr.mean():.2f}")
    before = _sha(tmp_path / "h.h5")
    again = _cli("--out", "h.h5", *args, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip().splitlines() == [
        "make_heldout_ct: error: output file exists: h.h5 (pass --overwrite to replace it)"
    ]
    assert _sha(tmp_path / "h.h5") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.h5"]
