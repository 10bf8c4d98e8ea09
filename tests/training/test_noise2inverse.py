"""Noise2Inverse training: the pairs it learns from, its data checks, the scan it reconstructs."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest
from helpers import file_sha256, shepp_logan, smooth_stack, write_projection_scan

from tomogan_tf.errors import InputError
from tomogan_tf.tomography.reconstruct import CACHE_FILE
from tomogan_tf.training import TrainConfig, open_training_data, train

TINY = dict(psz=16, mbsz=2, val_every=3, log_every=3, val_slices=2, vgg_weights="none")


def write_splits(path, k: int = 3, n: int = 8, size: int = 24, sigma: float = 0.1) -> str:
    """``k`` sub-reconstructions of the same smooth slices with independent noise."""
    rng = np.random.default_rng(5)
    clean = smooth_stack(rng, n, size, size)
    with h5py.File(path, "w") as f:
        f["clean"] = clean
        for j in range(k):
            f[f"split_{j}"] = clean + sigma * rng.standard_normal(clean.shape, "float32")
    return str(path)


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"model": "adl3d"}, "--mode n2i trains on slices"),
        ({"gt_key": "clean"}, "drop --gt_key"),
        ({"split_key": "split"}, "--split_key must contain"),
        ({"splits": 1}, "--splits must be at least 2"),
        ({"layout": "dxchange", "minus_log": True}, "--minus_log does not apply to --mode n2i"),
        ({"val_fraction": 0.0}, "--val_fraction must be between 0 and 1"),
    ],
)
def test_settings_that_cannot_work_are_refused(overrides, problem):
    config = TrainConfig.from_settings(h5="x.h5", mode="n2i", **overrides)
    with pytest.raises(InputError, match=problem):
        config.validate()


def test_centre_applies_to_n2i_only():
    with pytest.raises(InputError, match="--centre applies to --mode n2i"):
        TrainConfig.from_settings(h5="x.h5", centre=10.0).validate()
    config = TrainConfig.from_settings(h5="x.h5", mode="n2i").validate()
    assert (config.loss.ladv, config.loss.lperc, config.data.splits) == (0, 0, 4)


def test_pairs_are_the_mean_of_the_others_and_the_held_out_split(tmp_path):
    path = write_splits(tmp_path / "recon.h5", k=3, n=8)
    config = TrainConfig.from_settings(h5=path, mode="n2i", splits=3, depth=3, val_fraction=0.25,
                                       **TINY).validate()  # fmt: skip
    train_reader, val_reader = open_training_data(config)
    assert train_reader.shape == (6 * 3, 24, 24) and val_reader.shape == (2 * 3, 24, 24)
    with h5py.File(path, "r") as f:
        splits = [f[f"split_{j}"][...] for j in range(3)]
    noisy, target = train_reader.read(3 * 4 + 1, 0, 0, 24, 24)  # slice 4, split 1 held out
    for c, i in enumerate((3, 4, 5)):  # the neighbours, with the same split held out
        np.testing.assert_allclose(noisy[..., c], (splits[0][i] + splits[2][i]) / 2, atol=1e-6)
    np.testing.assert_array_equal(target[..., 0], splits[1][4])
    # Validation holds the last quarter of the slices out.
    _, val_target = val_reader.read(0, 0, 0, 24, 24)
    np.testing.assert_array_equal(val_target[..., 0], splits[0][6])


def test_a_file_without_the_splits_is_refused_by_name(tmp_path):
    path = write_splits(tmp_path / "recon.h5", k=2)
    config = TrainConfig.from_settings(h5=path, mode="n2i", logdir=str(tmp_path / "run"), **TINY)
    with pytest.raises(InputError, match=r"needs 4 sub-reconstructions named 'split_\{k\}'") as err:
        train(config, verbose=0)
    assert err.value.path == path
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_trains_from_a_data_exchange_scan_reconstructed_into_the_run(tmp_path):
    scan = write_projection_scan(tmp_path / "scan.h5", shepp_logan(32), angles=24, rows=6)
    before = file_sha256(scan)
    logdir = tmp_path / "run"
    settings = dict(h5=scan, layout="dxchange", mode="n2i", splits=2, logdir=str(logdir), **TINY)
    metrics = train(TrainConfig.from_settings(maxiter=3, **settings), verbose=0)
    assert np.isfinite(metrics["psnr"]) and metrics["iteration"] == 3
    cache = logdir / CACHE_FILE
    with h5py.File(cache, "r") as f:
        assert sorted(f) == ["geometry", "recon", "split_0", "split_1"]
        assert f["split_0"].shape == (6, 32, 32)
        np.testing.assert_allclose(
            (f["split_0"][...] + f["split_1"][...]) / 2, f["recon"][...], atol=1e-5
        )
    assert file_sha256(scan) == before  # nothing is written into the input
    made = cache.stat().st_mtime_ns
    train(TrainConfig.from_settings(maxiter=6, **settings), verbose=0)  # resumed
    assert cache.stat().st_mtime_ns == made  # the cached reconstruction is reused
    os.utime(scan, ns=(made, made + 10**9))  # the scan changed: reconstructed again
    train(TrainConfig.from_settings(maxiter=9, **settings), verbose=0)
    assert cache.stat().st_mtime_ns != made
