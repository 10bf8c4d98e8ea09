"""The pretrained model in saved_models/: present, self-consistent, and it denoises."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, run_module

from data_tools.make_ct_dataset import make_ct_dataset
from tomogan_tf.evaluate import evaluate
from tomogan_tf.inference import Denoiser
from tomogan_tf.inference.denoiser import DEFAULT_MODEL, shipped_models_dir

SHIPPED = os.path.join(ROOT, "saved_models", DEFAULT_MODEL)


def test_shipped_model_is_found_and_documented():
    assert shipped_models_dir() == os.path.join(ROOT, "saved_models")
    for name in ("generator.keras", "config.json", "MODEL_CARD.md"):
        assert os.path.isfile(os.path.join(SHIPPED, name)), name
    with open(os.path.join(SHIPPED, "MODEL_CARD.md")) as f:
        card = f.read()
    assert "python -m tomogan_tf.train" in card and "PSNR" in card


def test_shipped_savedmodel_matches_the_keras_model():
    keras_den = Denoiser.load(None)
    served = Denoiser.load(os.path.join(SHIPPED, "savedmodel"))
    image = np.random.default_rng(0).normal(0.02, 0.002, (40, 56)).astype(np.float32)
    np.testing.assert_allclose(served(image), keras_den(image), rtol=1e-4, atol=1e-6)
    assert tf.saved_model.contains_saved_model(os.path.join(SHIPPED, "savedmodel", "1"))


@pytest.mark.slow
def test_shipped_model_denoises_fresh_synthetic_ct(tmp_path):
    path = str(tmp_path / "fresh.h5")
    make_ct_dataset(path, n_train=1, n_test=2, seed=12345)
    result = evaluate(Denoiser.load(None), path, "test_ns", "test_gt")
    assert result["psnr"] > result["psnr_noisy"] + 3.0
    assert result["ssim"] > result["ssim_noisy"]


def test_denoise_without_model_uses_the_shipped_one(tmp_path):
    src, dst = str(tmp_path / "in.npy"), str(tmp_path / "out.npy")
    image = np.random.default_rng(1).normal(0.02, 0.002, (48, 40)).astype(np.float32)
    np.save(src, image)
    result = run_module("tomogan_tf.denoise", "--input", src, "--output", dst)
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(dst), Denoiser.load(None)(image), rtol=1e-5, atol=1e-6)
