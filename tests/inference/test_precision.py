"""Every precision runs every path a model takes and hands back float32 (never how fast)."""

from __future__ import annotations

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_module

from tomogan_tf import Denoiser, build_generator
from tomogan_tf.data.normalization import Normalizer
from tomogan_tf.errors import InputError
from tomogan_tf.serving import export_savedmodel
from tomogan_tf.utils import precision as P

MIXED = ["mixed_bfloat16", "mixed_float16"]
NORM = Normalizer(0.0, 1.0)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> str:
    """A TomoGAN run directory with random weights (depth 1)."""
    directory = tmp_path_factory.mktemp("run")
    keras.utils.set_random_seed(0)
    build_generator("tomogan", depth=1).save(os.path.join(directory, "generator_best.keras"))
    config = {"model": "tomogan", "depth": 1, "normalization": NORM.to_dict()}
    (directory / "config.json").write_text(json.dumps(config))
    return str(directory)


@pytest.mark.parametrize("policy", MIXED)
def test_a_cloned_network_computes_in_16_bits_with_float32_weights_and_outputs(policy):
    keras.utils.set_random_seed(0)
    net = build_generator("tomogan", depth=1)
    mixed = P.with_precision(net, policy)
    assert mixed is not net and P.with_precision(mixed, policy) is mixed
    compute = {layer.compute_dtype for layer in mixed.layers if layer.weights}
    assert policy.split("_")[1] in compute
    # The layers that make the outputs compute (and return) float32.
    assert {t._keras_history[0].compute_dtype for t in mixed.outputs} == {"float32"}
    assert all(w.dtype == "float32" for w in mixed.weights)
    x = np.random.default_rng(0).random((1, 32, 32, 1)).astype(np.float32)
    reference, out = net(x).numpy(), mixed(x)
    assert out.dtype == "float32"
    # The same weights: 16-bit rounding only (bfloat16 keeps 8 bits of mantissa).
    error = np.abs(out.numpy() - reference).max() / np.ptp(reference)
    assert 0 < error < 0.05
    # The original is untouched, and switching back gives it again to the last bit.
    back = P.with_precision(mixed, "float32")
    np.testing.assert_array_equal(back(x).numpy(), reference)


@pytest.mark.parametrize("precision", ["float32", *MIXED])
def test_denoiser_runs_each_precision_and_returns_float32(run_dir, precision):
    image = np.random.default_rng(1).uniform(0.2, 0.8, (3, 40, 36)).astype(np.float32)
    den = Denoiser.load(run_dir, precision=precision)
    assert den.precision.policy == precision
    out = den(image)
    assert out.dtype == np.float32 and out.shape == image.shape and np.isfinite(out).all()
    reference = Denoiser.load(run_dir, precision="float32")(image)
    assert np.abs(out - reference).max() <= 0.05 * np.ptp(reference)


def test_auto_follows_the_hardware_and_the_measured_quality(monkeypatch):
    monkeypatch.setattr(P, "gpu_compute_capabilities", lambda: [])
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    monkeypatch.setattr(P, "QUALITY_LOSS_DB", {"mixed_bfloat16": 0.03, "mixed_float16": 0.01})
    assert P.resolve("auto").policy == "mixed_bfloat16"
    monkeypatch.setattr(P, "gpu_compute_capabilities", lambda: [(7, 5)])
    assert P.resolve("auto").policy == "mixed_float16"
    monkeypatch.setattr(P, "gpu_compute_capabilities", lambda: [(8, 0), (9, 0)])
    assert P.resolve("auto").policy == "mixed_bfloat16"
    monkeypatch.setattr(P, "gpu_compute_capabilities", lambda: [(6, 1)])
    assert P.resolve("auto").policy == "float32"
    # Native hardware, but a policy that costs more than 0.05 dB is not taken.
    monkeypatch.setattr(P, "gpu_compute_capabilities", lambda: [])
    monkeypatch.setattr(P, "QUALITY_LOSS_DB", {"mixed_bfloat16": 0.07})
    chosen = P.resolve("auto")
    assert chosen.policy == "float32" and "mixed_bfloat16 costs 0.07 dB" in chosen.reason
    monkeypatch.setattr(P, "cpu_flags", lambda: frozenset({"avx2"}))
    assert "CPU without native 16-bit compute" in P.resolve("auto").describe()
    assert P.resolve("mixed_float16").policy == "mixed_float16"
    with pytest.raises(ValueError, match="precision must be one of"):
        P.resolve("float64")


def test_export_records_its_precision_and_serves_float32(run_dir, tmp_path):
    target = export_savedmodel(run_dir, str(tmp_path / "serving"), precision="mixed_bfloat16")
    with open(os.path.join(target, "assets.extra", "tomogan_tf.json")) as f:
        meta = json.load(f)
    assert meta["precision"] == "mixed_bfloat16"
    signature = tf.saved_model.load(target).signatures["serving_default"]
    noisy = np.random.default_rng(2).uniform(0.2, 0.8, (2, 24, 16, 1)).astype(np.float32)
    served = signature(noisy=tf.constant(noisy))["denoised"]
    assert served.dtype == tf.float32
    keras_mixed = Denoiser.load(run_dir, precision="mixed_bfloat16")(noisy[..., 0])
    np.testing.assert_allclose(served.numpy()[..., 0], keras_mixed, atol=0.02)
    assert Denoiser.load(target).precision.policy == "mixed_bfloat16"
    with pytest.raises(InputError, match="computes in mixed_bfloat16 as exported"):
        Denoiser.load(target, precision="float32")


def test_cli_prints_the_precision_it_chose(run_dir, tmp_path):
    src, dst = str(tmp_path / "in.npy"), str(tmp_path / "out.npy")
    np.save(src, np.random.default_rng(3).uniform(0.2, 0.8, (2, 24, 24)).astype(np.float32))
    args = ["--model", run_dir, "--input", src, "--output", dst]
    result = run_module("tomogan_tf.denoise", *args, "--precision", "mixed_bfloat16")
    assert result.returncode == 0, result.stderr
    assert "precision mixed_bfloat16 (as asked)" in result.stdout
    assert np.load(dst).dtype == np.float32
    result = run_module("tomogan_tf.denoise", *args, "--overwrite")
    assert result.returncode == 0, result.stderr
    assert f"{run_dir}" in result.stdout and "precision " in result.stdout
    assert f"{P.resolve('auto').describe()}" in result.stdout
