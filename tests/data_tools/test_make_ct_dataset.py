"""Tests for data_tools.make_ct_dataset (tiny sizes so the whole file runs in a few seconds).

The library is tested through its public modules (`data_tools.writers`, ``scanner``,
``phantoms``, ``metrics``); the CLI as a user runs it.
"""

from __future__ import annotations

import math
import re
import subprocess
from pathlib import Path

import h5py
import numpy as np
import pytest
from helpers import correlation as _corr
from helpers import file_sha256 as _sha
from helpers import run_module

from data_tools import make_ct_dataset as cli
from data_tools import metrics, phantoms, scanner, writers
from data_tools.errors import CTDatasetError, OutputExistsError
from tomogan_tf.utils.files import temporary_name

SMALL = dict(n_train=6, n_test=4, size=32, views=24, slices_per_volume=3)
NAMES = ("train_ns", "train_gt", "test_ns", "test_gt")


def _read(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {name: f[name][...] for name in (*NAMES, "theta")}


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_module("data_tools.make_ct_dataset", *args, timeout=120, cwd=cwd)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("ct") / "small.h5"
    writers.make_ct_dataset(path, seed=1, **SMALL)
    return path


def test_layout_shapes_dtype_and_attributes(small: Path) -> None:
    data = _read(small)
    assert data["train_ns"].shape == data["train_gt"].shape == (6, 32, 32)
    assert data["test_ns"].shape == data["test_gt"].shape == (4, 32, 32)
    for name in NAMES:
        assert data[name].dtype == np.float32
        assert np.all(np.isfinite(data[name]))
    np.testing.assert_allclose(data["theta"], np.arange(24) * 7.5)
    with h5py.File(small, "r") as f:
        assert f.attrs["views"] == 24 and f.attrs["size"] == 32 and f.attrs["seed"] == 1
        assert f.attrs["i0"] == 1e4
        assert f.attrs["pixel_mm"] == pytest.approx(scanner.DEFAULT_FOV_MM / 32)
        assert f.attrs["generator"] == writers.CT_GENERATOR
        assert f["train_ns"].chunks == (1, 32, 32)
    assert sorted(p.name for p in small.parent.iterdir()) == ["small.h5"]  # no temp files


def test_deterministic_for_a_seed_and_different_for_another(small: Path, tmp_path: Path) -> None:
    again, other = tmp_path / "again.h5", tmp_path / "other.h5"
    writers.make_ct_dataset(again, seed=1, **SMALL)
    writers.make_ct_dataset(other, seed=2, **SMALL)
    first, second, third = _read(small), _read(again), _read(other)
    for name in NAMES:
        assert np.array_equal(first[name], second[name]), name
        assert not np.allclose(first[name], third[name]), name


def test_test_set_does_not_depend_on_n_train(small: Path, tmp_path: Path) -> None:
    fewer = tmp_path / "fewer.h5"
    writers.make_ct_dataset(fewer, seed=1, **{**SMALL, "n_train": 2})
    first, second = _read(small), _read(fewer)
    assert np.array_equal(first["test_ns"], second["test_ns"])
    assert np.array_equal(first["test_gt"], second["test_gt"])
    assert np.array_equal(first["train_gt"][:2], second["train_gt"])
    # train and test are independent draws, not copies
    assert not np.allclose(first["train_gt"][:4], first["test_gt"])


def test_noisy_is_noisier_and_lower_dose_is_noisier() -> None:
    def stacks(i0: float) -> tuple[np.ndarray, np.ndarray]:
        pairs = list(scanner.simulate_slices(4, 32, 24, i0, slices_per_volume=2, rng=5))
        return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])

    low_ns, low_gt = stacks(1e3)
    high_ns, high_gt = stacks(1e5)
    # same phantoms whatever the dose: only the noise differs
    assert np.array_equal(low_gt, high_gt)
    psnr_low, psnr_high = metrics.mean_psnr(low_ns, low_gt), metrics.mean_psnr(high_ns, high_gt)
    assert np.isfinite(psnr_low) and np.isfinite(psnr_high)
    assert psnr_low < 40.0
    assert psnr_low + 10.0 < psnr_high  # 100x the photons -> ~20 dB less noise power


def test_default_dose_psnr_is_noisy_but_finite(small: Path) -> None:
    data = _read(small)
    psnr = metrics.mean_psnr(data["test_ns"], data["test_gt"])
    assert 15.0 < psnr < 40.0


def test_adjacent_slices_more_correlated_than_other_volumes(small: Path) -> None:
    gt = _read(small)["train_gt"]  # two volumes of three slices: [0, 1, 2] and [3, 4, 5]
    adjacent = [_corr(gt[i], gt[i + 1]) for i in (0, 1, 3, 4)]
    across = [_corr(gt[i], gt[j]) for i in range(3) for j in range(3, 6)]
    assert min(adjacent) > 0.9
    assert min(adjacent) > max(across)
    assert not np.array_equal(gt[0], gt[1])  # adjacent slices still differ


def test_clean_values_in_plausible_attenuation_range(small: Path) -> None:
    data = _read(small)
    for name in ("train_gt", "test_gt"):
        gt = data[name]
        assert 0.01 < gt.max() < 0.2, gt.max()
        assert gt.min() > -0.01
        # body interior is soft tissue (~0.02/mm): the median of non-air pixels is close to it
        assert 0.012 < np.median(gt[gt > 0.008]) < 0.03


def test_phantom_stays_inside_reconstruction_circle() -> None:
    size = 64
    idx = np.arange(size) - size / 2 + 0.5
    radius = np.hypot(idx[:, None], idx[None, :]) / (size / 2)
    for seed in range(12):
        phantom = phantoms.random_phantom(np.random.default_rng(seed), z_center=0.0)
        for z in (-0.2, 0.0, 0.2):
            mu = phantoms.phantom_slice(phantom, z, size)
            assert mu.shape == (size, size)
            assert mu.max() > 0.03  # bone present
            assert np.all(mu[radius > 0.95] == 0.0), (phantom.kind, z)


def test_partial_volume_edges() -> None:
    disk = phantoms.Ellipsoid(0.05, -0.03, 0.0, a=0.6, b=0.4, c=1.0, value=0.02, theta=0.3)
    phantom = phantoms.Phantom3D(kind="disk", objects=[disk])
    mu = phantoms.phantom_slice(phantom, 0.0, 32)
    # 2x2-mean of a 2x supersampled rendering: edge pixels get 1/4, 2/4 or 3/4 of the value
    values = set(np.round(mu.ravel() / 0.02 * 4).astype(int).tolist())
    assert values == {0, 1, 2, 3, 4}
    np.testing.assert_allclose(mu * 4 / 0.02, np.round(mu * 4 / 0.02), atol=1e-9)
    # the ellipsoid's cross-section shrinks away from its centre and vanishes beyond c
    assert 0 < phantoms.phantom_slice(phantom, 0.8, 32).sum() < mu.sum()
    assert phantoms.phantom_slice(phantom, 1.01, 32).sum() == 0.0


@pytest.mark.parametrize(
    "bad",
    [
        {"size": 15},
        {"size": 8},
        {"n_train": 0},
        {"n_test": -1},
        {"i0": 0.0},
        {"views": 0},
        {"pixel_mm": -1.0},
        {"slices_per_volume": 0},
        {"kind": "bogus"},
    ],
)
def test_bad_arguments_raise_clear_error(tmp_path: Path, bad: dict) -> None:
    out = tmp_path / "bad.h5"
    with pytest.raises(CTDatasetError, match=next(iter(bad))):
        writers.make_ct_dataset(out, **{**SMALL, **bad})
    assert issubclass(CTDatasetError, ValueError)
    assert list(tmp_path.iterdir()) == []


def test_api_refuses_overwrite_unless_asked(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "data.h5"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError, match=re.escape(str(out))):
        writers.make_ct_dataset(out, **SMALL)
    assert out.read_bytes() == b"precious"
    writers.make_ct_dataset(out, seed=1, overwrite=True, **SMALL)
    assert np.array_equal(_read(out)["test_ns"], _read(small)["test_ns"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.h5"]


def test_failure_mid_run_leaves_no_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = scanner.simulate_scan
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(scanner, "simulate_scan", flaky)
    with pytest.raises(RuntimeError, match="simulated crash"):
        writers.make_ct_dataset(tmp_path / "out.h5", **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_stale_temporary_is_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "data.h5"
    stale = Path(temporary_name(str(out)))  # as a killed run of this process id leaves it
    stale.write_bytes(b"half-written")
    writers.make_ct_dataset(out, **{**SMALL, "n_train": 1, "n_test": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.h5"]


def test_cli_module_reexports_the_library() -> None:
    assert cli.make_ct_dataset is writers.make_ct_dataset
    assert cli.GENERATOR == writers.CT_GENERATOR and cli.KINDS is writers.KINDS
    assert cli.simulate_slices is scanner.simulate_slices
    assert cli.simulate_scan is scanner.simulate_scan
    assert cli.ScanVariety is scanner.ScanVariety
    assert cli.random_phantom is phantoms.random_phantom
    assert cli.mean_psnr is metrics.mean_psnr
    assert cli.CTDatasetError is CTDatasetError and cli.OutputExistsError is OutputExistsError
    assert all(hasattr(cli, name) for name in cli.__all__)


def test_cli_refuses_to_overwrite(small: Path, tmp_path: Path) -> None:
    out = tmp_path / "existing.h5"
    out.write_bytes(small.read_bytes())
    before = _sha(out)
    proc = _cli("--out", str(out), "--size", "32", "--views", "24", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("make_ct_dataset: error:") and str(out) in lines[0]
    assert _sha(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.h5"]


def test_cli_writes_dataset_and_reports_psnr(tmp_path: Path) -> None:
    out = tmp_path / "cli.h5"
    proc = _cli(
        "--out", str(out), "--size", "32", "--views", "24", "--n_train", "3", "--n_test", "2",
        "--slices_per_volume", "2", "--seed", "4", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "PSNR" in proc.stdout and str(out) in proc.stdout
    # stdout is not a terminal here: no progress bar, only the summary line
    assert proc.stdout.count("\n") == 1 and "ETA" not in proc.stderr
    data = _read(out)
    assert data["train_ns"].shape == (3, 32, 32) and data["test_gt"].shape == (2, 32, 32)
    expected = metrics.mean_psnr(data["test_ns"], data["test_gt"])
    assert f"{expected:.2f} dB" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cli.h5"]
    bad = _cli("--out", str(tmp_path / "x.h5"), "--size", "15", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "make_ct_dataset: error: size must be an even integer >= 16, got 15"
    )


# ---- self-supervised kinds ------------------------------------------------------------------

KEYS = {
    "supervised": {"train_ns", "train_gt", "test_ns", "test_gt"},
    "noisy": {"train_ns", "test_ns", "test_gt"},
    "pairs": {"train_ns", "train_ns2", "test_ns", "test_ns2", "test_gt"},
}


@pytest.fixture(scope="module")
def kinds(small: Path) -> dict[str, Path]:
    paths = {"supervised": small}
    for kind in ("noisy", "pairs"):
        paths[kind] = small.with_name(f"{kind}.h5")
        writers.make_ct_dataset(paths[kind], seed=1, kind=kind, **SMALL)
    return paths


@pytest.mark.parametrize("kind", list(KEYS))
def test_keys_and_attributes_per_kind(kinds: dict[str, Path], kind: str) -> None:
    with h5py.File(kinds[kind], "r") as f:
        assert set(f) == {*KEYS[kind], "theta"}
        for name in KEYS[kind]:
            n = SMALL["n_train"] if name.startswith("train") else SMALL["n_test"]
            assert f[name].shape == (n, 32, 32) and f[name].dtype == np.float32
        if kind == "supervised":  # unchanged layout: no new attributes
            assert "kind" not in f.attrs and not f["test_gt"].attrs
        else:
            assert f.attrs["kind"] == kind
            assert f.attrs["training_keys"] == ",".join(
                sorted(k for k in KEYS[kind] if "train" in k)
            )
            assert "evaluation only" in f["test_gt"].attrs["use"]


def test_kinds_share_the_supervised_noise_and_content(kinds: dict[str, Path]) -> None:
    supervised = _read(kinds["supervised"])
    with h5py.File(kinds["noisy"], "r") as a, h5py.File(kinds["pairs"], "r") as b:
        for f in (a, b):  # the supervised random stream is untouched by the extra draw
            for name in ("train_ns", "test_ns", "test_gt"):
                assert np.array_equal(f[name][...], supervised[name]), (f.filename, name)


def test_supervised_stream_unchanged_by_pairs() -> None:
    plain = list(scanner.simulate_slices(3, 32, 16, 1e3, slices_per_volume=2, rng=9))
    paired = list(scanner.simulate_slices(3, 32, 16, 1e3, slices_per_volume=2, rng=9, pairs=True))
    assert all(len(p) == 2 for p in plain) and all(len(p) == 3 for p in paired)
    for (ns, gt), (ns_p, gt_p, ns2) in zip(plain, paired, strict=True):
        assert np.array_equal(ns, ns_p) and np.array_equal(gt, gt_p)
        assert not np.array_equal(ns, ns2)


def test_pair_noises_are_independent_with_the_same_content(kinds: dict[str, Path]) -> None:
    with h5py.File(kinds["pairs"], "r") as f:
        ns, ns2, gt = f["test_ns"][...], f["test_ns2"][...], f["test_gt"][...]
        train_ns, train_ns2 = f["train_ns"][...], f["train_ns2"][...]
    assert abs(_corr(ns - gt, ns2 - gt)) < 0.1
    # both scans see the same slice with the same dose: equal noise level and no bias
    mse, mse2 = np.mean((ns - gt) ** 2), np.mean((ns2 - gt) ** 2)
    assert 0.7 < mse2 / mse < 1.4
    assert abs(float(np.mean(ns2 - gt))) < 0.2 * math.sqrt(mse2)
    # independent noise averages down: the mean of the two scans has about half the MSE
    assert np.mean(((ns + ns2) / 2 - gt) ** 2) < 0.65 * (mse + mse2) / 2
    # training pairs: same clean content, so the two scans agree far better than across slices
    assert _corr(train_ns[0], train_ns2[0]) > 0.9
    assert not np.array_equal(train_ns, train_ns2)


def test_cli_kind_pairs_and_bad_kind(tmp_path: Path) -> None:
    out = tmp_path / "pairs.h5"
    proc = _cli(
        "--out", str(out), "--kind", "pairs", "--size", "32", "--views", "16", "--n_train", "2",
        "--n_test", "1", "--slices_per_volume", "2", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (
        "train_ns/train_ns2 (2, 32, 32)" in proc.stdout and "test_gt for evaluation" in proc.stdout
    )
    with h5py.File(out, "r") as f:
        assert set(f) == {*KEYS["pairs"], "theta"}
    bad = _cli("--out", str(tmp_path / "x.h5"), "--kind", "clean", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "make_ct_dataset: error: flag --kind=clean: value should be one of <supervised|noisy|pairs>"
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pairs.h5"]
