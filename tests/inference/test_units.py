"""Unit-proof denoising: the same slices in any affine unit system give the same result.

Per-image normalisation maps every image by its own noisy percentiles, which move with
any change of units, so 1/mm, 1/pixel, 1/cm, HU, integer counts and 8-bit data reach
the network as the same numbers and come back in their own units. Checked for the
`Denoiser`, the command line, the exported SavedModel and the training reader; plus
the promised message for images that cannot be mapped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from tomogan_tf import Denoiser, build_generator
from tomogan_tf.data import Normalizer, StackReader, open_stack
from tomogan_tf.data.normalization import (
    PerImageNormalization,
    UnmappableWarning,
    percentile_window,
    percentile_window_tf,
)
from tomogan_tf.serving import export_savedmodel

WATER = 0.0192  # 1/mm
PIXEL_MM = 0.96


def clean_and_noisy(n: int = 3, size: int = 40, seed: int = 0):
    """A few CT-like slices in 1/mm: air, a water disc, a bone ring, noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    r = np.hypot(yy, xx)
    clean = np.where(r < 0.4, WATER, 0.0) + np.where((r > 0.33) & (r < 0.38), 0.03, 0.0)
    clean = np.stack([clean * (1 + 0.05 * k) for k in range(n)])
    noisy = clean + rng.normal(0, 0.003, clean.shape)
    return clean.astype(np.float32), noisy.astype(np.float32)


# Each unit system: (name, forward map from 1/mm, dtype it is stored in). Integer systems
# round, which is part of what a user's data went through.
UNITS = [
    ("1/mm", lambda mu: mu, np.float32),
    ("1/pixel", lambda mu: mu * PIXEL_MM, np.float32),
    ("1/cm", lambda mu: mu * 10.0, np.float32),
    ("HU", lambda mu: (mu / WATER - 1.0) * 1000.0, np.float32),
    ("uint16 counts", lambda mu: mu / WATER * 1000.0 * 8.0 + 1024.0, np.uint16),
    ("int16 HU", lambda mu: (mu / WATER - 1.0) * 1000.0, np.int16),
    ("8-bit", lambda mu: (mu + 0.005) / 0.045 * 255.0, np.uint8),
]


def to_units(mu: np.ndarray, forward, dtype) -> np.ndarray:
    values = forward(mu.astype(np.float64))
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        values = np.clip(np.round(values), info.min, info.max)
    return values.astype(dtype)


def back_to_mm(values: np.ndarray, forward) -> np.ndarray:
    """Invert an affine ``forward`` from two points."""
    a = forward(np.float64(0.0))
    b = forward(np.float64(1.0)) - a
    return (values.astype(np.float64) - a) / b


def smoothing_model() -> keras.Model:
    """A fixed 3x3 mean filter: a denoiser whose effect is easy to see."""
    inputs = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(1, 3, padding="same", use_bias=False, name="mean")
    model = keras.Model(inputs, conv(inputs))
    conv.set_weights([np.full((3, 3, 1, 1), 1 / 9, np.float32)])
    return model


def write_run(directory, generator: keras.Model, normalization) -> str:
    os.makedirs(directory, exist_ok=True)
    generator.save(os.path.join(directory, "generator_best.keras"))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump({"model": "tomogan", "normalization": normalization.to_dict()}, f)
    return str(directory)


@pytest.fixture(scope="module")
def per_image_run(tmp_path_factory) -> str:
    keras.utils.set_random_seed(3)
    generator = build_generator("tomogan", depth=1)
    return write_run(tmp_path_factory.mktemp("run"), generator, PerImageNormalization())


def test_percentile_window_in_graph_matches_numpy():
    rng = np.random.default_rng(1)
    for shape in ((2, 37, 53), (1, 300, 300)):  # the second is subsampled (stride 1 vs 1)
        images = rng.gamma(2.0, 1.0, shape).astype(np.float32)
        graph = percentile_window_tf(tf.constant(images)).numpy()
        for image, window in zip(images, graph, strict=True):
            np.testing.assert_allclose(window, percentile_window(image), rtol=1e-6)
    big = rng.normal(size=(1, 700, 500)).astype(np.float32)  # stride 2
    np.testing.assert_allclose(
        percentile_window_tf(tf.constant(big)).numpy()[0], percentile_window(big[0]), rtol=1e-6
    )


@pytest.mark.parametrize("name,forward,dtype", UNITS[1:], ids=[u[0] for u in UNITS[1:]])
def test_denoiser_gives_the_same_image_in_every_unit_system(per_image_run, name, forward, dtype):
    """A random (very non-linear) TomoGAN, so only the normalisation can make this hold.

    Integer storage rounds the data; the reference is then the same rounded data handed
    over in 1/mm, so what is compared is the unit system alone. (How much rounding
    itself costs a trained model is measured on the shipped one, test_shipped_model.)
    """
    _, noisy = clean_and_noisy()
    den = Denoiser.load(per_image_run)
    stored = to_units(noisy, forward, dtype)
    reference = den(back_to_mm(stored, forward).astype(np.float32))
    converted = back_to_mm(den(stored), forward)
    window = float(noisy.max() - noisy.min())
    np.testing.assert_allclose(converted, reference, atol=2e-5 * window)
    assert np.abs(reference - noisy).max() > 0.05 * window  # the model did change the image


def test_a_fixed_window_model_is_not_unit_proof_and_says_so(tmp_path):
    """The old behaviour, kept for runs with --norm fixed: HU into a 1/mm window warns."""
    run = write_run(tmp_path / "fixed", smoothing_model(), Normalizer(-0.002, 0.04))
    _, noisy = clean_and_noisy()
    hu = to_units(noisy, UNITS[3][1], np.float32)
    den = Denoiser.load(run)
    with pytest.warns(UnmappableWarning, match="nothing like the model's fixed window"):
        out = den(hu)
    np.testing.assert_array_equal(out, hu)  # passed through, not garbage
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnmappableWarning)  # in its own units: no warning
        assert not np.array_equal(den(noisy), noisy)
    with pytest.raises(Exception, match="fixed window"):
        Denoiser.load(run, strict=True)(hu)


def test_constant_image_is_passed_through_with_one_warning(per_image_run):
    den = Denoiser.load(per_image_run)
    constant = np.full((2, 24, 24), 1000.0, np.float32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = den(constant)
    ours = [w for w in caught if issubclass(w.category, UnmappableWarning)]
    assert len(ours) == 2  # the first image, then the count for the stack
    assert "is constant" in str(ours[0].message) and "2 images" in str(ours[1].message)
    np.testing.assert_array_equal(out, constant)


def test_savedmodel_normalises_each_image_in_the_graph(per_image_run, tmp_path):
    clean, noisy = clean_and_noisy()
    served = Denoiser.load(export_savedmodel(per_image_run, str(tmp_path / "serve"), 1))
    reference = Denoiser.load(per_image_run)(noisy)
    window = float(clean.max() - clean.min())
    np.testing.assert_allclose(served(noisy), reference, atol=1e-5 * window)
    for _, forward, dtype in UNITS:
        stored = to_units(noisy, forward, dtype)
        same_data = Denoiser.load(per_image_run)(back_to_mm(stored, forward).astype(np.float32))
        np.testing.assert_allclose(
            back_to_mm(served(stored), forward), same_data, atol=2e-5 * window
        )
    # A raw TF Serving client: the signature itself, one constant image among them.
    loaded = tf.saved_model.load(str(tmp_path / "serve" / "1"))
    batch = np.stack([to_units(noisy[0], UNITS[3][1], np.float32), np.full_like(noisy[0], 7.0)])
    y = loaded.signatures["serving_default"](noisy=tf.constant(batch[..., None]))["denoised"]
    np.testing.assert_array_equal(y.numpy()[1, ..., 0], batch[1])  # constant: unchanged
    assert np.isfinite(y.numpy()).all()
    # A client that tiles sends the whole image's window with each tile: with the
    # image's own window the second signature is the first one.
    window = np.array([percentile_window(batch[0])], np.float32)
    in_window = loaded.signatures["denoise_in_window"](
        noisy=tf.constant(batch[:1, ..., None]), window=tf.constant(window)
    )["denoised"]
    np.testing.assert_allclose(in_window.numpy(), y.numpy()[:1], rtol=1e-5, atol=1e-3)


def test_training_reader_sees_the_same_patches_in_hu_and_in_mm(tmp_path):
    """A model users train is unit-proof too: the pipeline maps both units identically,
    and the clean target goes through the noisy slice's own map."""
    clean, noisy = clean_and_noisy(n=4)
    hu = UNITS[3][1]
    paths = {}
    for name, convert in (("mm", lambda a: a), ("hu", hu)):
        paths[name] = str(tmp_path / f"{name}.h5")
        with h5py.File(paths[name], "w") as f:
            f["ns"], f["gt"] = convert(noisy), convert(clean)
    policy = PerImageNormalization()
    patches = {}
    for name, path in paths.items():
        reader = StackReader(open_stack(path, "ns"), open_stack(path, "gt"), 3)
        patches[name] = reader.read(2, 5, 7, 20, 24, normalization=policy)
    for a, b in zip(patches["mm"], patches["hu"], strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5)
    # The target went through the noisy slice's window, not its own percentiles.
    window = policy.for_image(noisy[2])
    np.testing.assert_allclose(
        patches["mm"][1][..., 0], window.apply(clean[2, 5:25, 7:31]), atol=1e-6
    )


def test_cli_denoises_hu_hdf5_and_uint16_tiff_alike(per_image_run, tmp_path):
    import tifffile

    clean, noisy = clean_and_noisy()
    hu_forward, counts_forward = UNITS[3][1], UNITS[4][1]
    inputs = {
        "mm.npy": noisy,
        "hu.h5": to_units(noisy, hu_forward, np.float32),
        "counts.tif": to_units(noisy, counts_forward, np.uint16),
    }
    # the same rounded counts handed over in 1/mm: what the uint16 result must equal
    inputs["counts_mm.npy"] = back_to_mm(inputs["counts.tif"], counts_forward).astype(np.float32)
    for name, data in inputs.items():
        path = str(tmp_path / name)
        if name.endswith(".h5"):
            with h5py.File(path, "w") as f:
                f["slices"] = data
        elif name.endswith(".tif"):
            tifffile.imwrite(path, data, photometric="minisblack")
        else:
            np.save(path, data)
    outputs = {}
    for name in inputs:
        out = str(tmp_path / f"out_{name.split('.')[0]}.npy")
        result = subprocess.run(
            [sys.executable, "-m", "tomogan_tf.denoise", "--model", per_image_run,
             "--input", str(tmp_path / name), "--output", out, "--input_key", "slices"],
            capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        outputs[name] = np.load(out)
    window = float(clean.max() - clean.min())
    ref = outputs["mm.npy"]
    np.testing.assert_allclose(back_to_mm(outputs["hu.h5"], hu_forward), ref, atol=1e-5 * window)
    counts = back_to_mm(outputs["counts.tif"], counts_forward)
    np.testing.assert_allclose(counts, outputs["counts_mm.npy"], atol=2e-5 * window)


def test_cli_constant_image_warns_by_default_and_fails_with_strict(per_image_run, tmp_path):
    path = str(tmp_path / "flat.npy")
    np.save(path, np.full((32, 32), 5.0, np.float32))
    base = [sys.executable, "-m", "tomogan_tf.denoise", "--model", per_image_run, "--input", path]
    ok = subprocess.run(
        [*base, "--output", str(tmp_path / "a.npy")], capture_output=True, text=True, timeout=300
    )
    assert ok.returncode == 0, ok.stderr
    lines = [line for line in ok.stderr.splitlines() if line.startswith("tomogan_tf.")]
    assert len(lines) == 1 and "is constant" in lines[0] and "flat.npy" in lines[0]
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.full((32, 32), 5.0))
    strict = subprocess.run(
        [*base, "--output", str(tmp_path / "b.npy"), "--strict"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert strict.returncode == 2
    ours = [line for line in strict.stderr.splitlines() if line.startswith("tomogan_tf.")]
    assert len(ours) == 1 and "error" in ours[0] and "is constant" in ours[0], strict.stderr
    assert not os.path.exists(tmp_path / "b.npy")
