"""``python -m tomogan_tf.train`` as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, run_module, write_pair_file

TINY = ["--psz", "16", "--mbsz", "2", "--val_slices", "2", "--vgg_weights", "none"]


def test_help_documents_every_flag():
    result = run_module("tomogan_tf.train", "--help")  # absl exits 1 after printing help
    for flag in (
        "--h5",
        "--logdir",
        "--model",
        "--depth",
        "--psz",
        "--mbsz",
        "--maxiter",
        "--itg",
        "--itd",
        "--lr_g",
        "--lr_d",
        "--gan_loss",
        "--lmse",
        "--ladv",
        "--lperc",
        "--vgg_weights",
        "--val_every",
        "--seed",
        "--mode",
        "--layout",
        "--mask",
        "--mask_fill",
        "--target_h5",
        "minus_log",
        "--val_fraction",
    ):
        assert flag in result.stdout, flag


def test_trains_and_reports_held_out_psnr(pair_file, tmp_path):
    logdir = str(tmp_path / "run")
    result = run_module(
        "tomogan_tf.train",
        "--h5",
        pair_file,
        "--logdir",
        logdir,
        "--maxiter",
        "6",
        "--val_every",
        "3",
        *TINY,
    )
    assert result.returncode == 0, result.stderr
    assert "held-out PSNR" in result.stdout and "generator_best.keras" in result.stdout
    # Not "as asked": nobody asked; float32 is the training default.
    assert "precision float32 (the training default" in result.stdout + result.stderr
    with open(os.path.join(logdir, "metrics.json")) as f:
        metrics = json.load(f)
    assert f"{metrics['psnr']:.2f} dB denoised" in result.stdout


def bad_file(tmp_path, kind: str) -> str:
    path = str(tmp_path / f"{kind}.h5")
    if kind == "missing":
        return path
    if kind == "corrupt":
        with open(path, "wb") as f:
            f.write(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)  # an HDF5 signature and nothing else
        return path
    write_pair_file(path, size=(32, 32))
    with h5py.File(path, "a") as f:
        if kind == "misnamed":
            f.move("train_gt", "train_clean")
        elif kind == "mismatch":
            del f["train_gt"]
            f["train_gt"] = np.zeros((5, 32, 32), np.float32)
        elif kind == "nan":
            f["train_ns"][3, 4, 4] = np.nan
        elif kind == "rank":
            del f["test_ns"]
            f["test_ns"] = np.zeros((3, 32, 32, 2), np.float32)
    return path


@pytest.mark.parametrize(
    "kind, problem, extra",
    [
        ("missing", "file not found", []),
        ("corrupt", "cannot read as HDF5", []),
        ("misnamed", "dataset 'train_gt' not found", []),
        ("mismatch", "must match slice for slice", []),
        ("nan", "'train_ns' has NaN or Inf values in slice 3", []),
        ("rank", "'test_ns' has shape (3, 32, 32, 2); expected 3 dimensions", []),
        ("small", "smaller than the patch size 64", ["--psz", "64"]),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, kind, problem, extra):
    path = bad_file(tmp_path, kind)
    logdir = str(tmp_path / "run")
    result = run_module("tomogan_tf.train", "--h5", path, "--logdir", logdir, *TINY, *extra)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"tomogan_tf.train: error: {path}: ")
    assert problem in lines[0]


@pytest.mark.slow
def test_killed_run_leaves_a_loadable_checkpoint_and_resumes(tmp_path):
    path = write_pair_file(str(tmp_path / "pairs.h5"), size=(32, 32))
    logdir = str(tmp_path / "run")
    args = ["--h5", path, "--logdir", logdir, "--maxiter", "100000", "--val_every", "2", *TINY]
    env = {**os.environ, "PYTHONPATH": ROOT}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tomogan_tf.train", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = os.path.join(logdir, "checkpoints")
    deadline = time.time() + 300
    while time.time() < deadline:  # wait for a few checkpoints, then kill mid-training
        state = tf.train.get_checkpoint_state(checkpoints) if os.path.isdir(checkpoints) else None
        if state and len(state.all_model_checkpoint_paths) >= 3:
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = tf.train.latest_checkpoint(checkpoints)
    stopped_at = int(latest.rsplit("-", 1)[1])
    assert stopped_at >= 6
    reader = tf.train.load_checkpoint(latest)  # loadable, with everything in it
    assert reader.get_tensor("iteration/.ATTRIBUTES/VARIABLE_VALUE") == stopped_at
    result = run_module(
        "tomogan_tf.train",
        *args[: -len(TINY)],
        *TINY,
        "--maxiter",
        str(stopped_at + 2),
    )
    assert result.returncode == 0, result.stderr
    assert f"at iteration {stopped_at}" in result.stderr
    assert tf.train.latest_checkpoint(checkpoints).endswith(f"ckpt-{stopped_at + 2}")
