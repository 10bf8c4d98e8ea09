"""Tiled denoising of arrays and files, and the SavedModel export."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_module

from tomogan_tf import build_generator
from tomogan_tf.data import Normalizer
from tomogan_tf.errors import InputError
from tomogan_tf.inference import Denoiser
from tomogan_tf.inference.tiling import _profile, predict_tiled, receptive_field_radius
from tomogan_tf.serving import export_savedmodel

NORM = Normalizer(100.0, 300.0)


def write_model_dir(directory, generator: keras.Model, normalizer=NORM) -> str:
    """A minimal run directory: a generator and the config.json with its normalisation."""
    os.makedirs(directory, exist_ok=True)
    generator.save(os.path.join(directory, "generator_best.keras"))
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump({"model": "tomogan", "normalization": normalizer.to_dict()}, f)
    return str(directory)


@keras.saving.register_keras_serializable(package="tests")
class PickChannel(keras.layers.Layer):
    def __init__(self, channel: int, **kwargs):
        super().__init__(**kwargs)
        self.channel = channel

    def call(self, inputs):
        return inputs[..., self.channel : self.channel + 1]

    def get_config(self):
        return {**super().get_config(), "channel": self.channel}


def identity_model() -> keras.Model:
    """A depth-1 'denoiser' of standard layers only (loads in any process): the identity."""
    inputs = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones")
    return keras.Model(inputs, conv(inputs))


def neighbour_picker(depth: int, channel: int) -> keras.Model:
    """A 'denoiser' that returns one channel of its input stack: easy to trace."""
    inputs = keras.Input((None, None, depth))
    return keras.Model(inputs, PickChannel(channel)(inputs))


@pytest.fixture(scope="module")
def random_generator():
    keras.utils.set_random_seed(0)
    return build_generator("tomogan", depth=1)


@pytest.fixture
def model_dir(tmp_path, random_generator):
    return write_model_dir(tmp_path / "run", random_generator)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, random_generator) -> tuple[str, str]:
    """A run directory and its SavedModel, exported once for the serving tests (they
    only read it): an export traces the model, seconds on this CPU."""
    model_dir = write_model_dir(tmp_path_factory.mktemp("run"), random_generator)
    base = str(tmp_path_factory.mktemp("serving") / "tomogan")
    return model_dir, export_savedmodel(model_dir, base)


def test_receptive_field_radius_of_tomogan(random_generator):
    radius = receptive_field_radius(lambda x: random_generator(x).numpy(), 1, 8)
    assert 24 <= radius <= 96 and radius % 8 == 0


def test_blend_profile_is_zero_in_the_margin_and_one_inside():
    w = _profile(64, margin=16, ramp=8, start_inside=True, end_inside=False)
    assert np.all(w[:16] == 0) and np.all(w[24:] == 1) and np.all(np.diff(w[16:24]) > 0)


def test_tiled_and_whole_image_results_agree(random_generator):
    predict = lambda x: random_generator(x).numpy()  # noqa: E731
    margin = receptive_field_radius(predict, 1, 8)
    image = np.random.default_rng(0).random((2, 208, 176, 1), dtype=np.float32)
    whole = predict(image)
    tiled = predict_tiled(predict, image, tile=2 * margin + 64, margin=margin, multiple=8)
    assert np.abs(tiled - whole).max() < 1e-3  # data range is 1 in these units


def test_denoiser_tiles_odd_sizes_and_matches_whole_image(model_dir):
    image = np.random.default_rng(1).uniform(100, 300, (1, 397, 301)).astype(np.float32)
    whole = Denoiser.load(model_dir, tile=4096)(image)
    small = Denoiser.load(model_dir)
    tiled = Denoiser.load(model_dir, tile=small.min_tile())(image)
    assert small.min_tile() < 301  # really tiled, in both directions
    assert whole.shape == tiled.shape == image.shape and whole.dtype == np.float32
    assert np.abs(tiled - whole).max() / NORM.scale < 1e-3


def test_too_small_tiles_are_refused(model_dir):
    den = Denoiser.load(model_dir, tile=64)
    with pytest.raises(InputError, match="--tile 64 leaves no room"):
        den(np.full((200, 200), 150.0, np.float32))


def test_output_is_in_input_units_after_padding_and_cropping(tmp_path):
    den = Denoiser.load(write_model_dir(tmp_path / "id", neighbour_picker(1, 0)))
    image = np.random.default_rng(2).uniform(120, 280, (45, 61)).astype(np.float32)
    np.testing.assert_allclose(den(image), image, rtol=1e-5)


def test_neighbouring_slices_are_reflected_at_the_stack_ends(tmp_path):
    den = Denoiser.load(write_model_dir(tmp_path / "prev", neighbour_picker(3, 0)))
    stack = np.stack([np.full((16, 16), 100.0 + 10 * i, np.float32) for i in range(5)])
    out = den(stack)  # channel 0 is the previous slice, slice 1 when reflected at 0
    np.testing.assert_allclose(out[:, 0, 0], [110, 100, 110, 120, 130], rtol=1e-5)


def test_stacks_stream_in_bounded_batches(tmp_path, model_dir):
    path = str(tmp_path / "stack.npy")
    np.save(path, np.random.default_rng(3).uniform(100, 300, (23, 32, 32)).astype(np.float32))
    from tomogan_tf.data.sinks import SliceSink
    from tomogan_tf.data.sources import open_stack

    sizes = []
    den = Denoiser.load(model_dir, batch_size=4)
    out_path = str(tmp_path / "out.npy")
    with open_stack(path) as source, SliceSink(out_path, source.shape, "float32") as sink:
        original = source.read
        source.read = lambda indices: sizes.append(len(indices)) or original(indices)
        den.denoise_file(source, sink, progress=False)
    assert max(sizes) <= 4 and sum(sizes) == 23
    np.testing.assert_allclose(np.load(out_path), den(np.load(path)), rtol=1e-5)


@pytest.mark.parametrize("suffix", [".h5", ".tif", ".npy"])
def test_cli_round_trips_each_format(tmp_path, model_dir, suffix):
    stack = np.random.default_rng(4).uniform(100, 300, (3, 40, 24)).astype(np.float32)
    src = str(tmp_path / f"in{suffix}")
    if suffix == ".h5":
        with h5py.File(src, "w") as f:
            f["test_ns"] = stack
    elif suffix == ".tif":
        import tifffile

        tifffile.imwrite(src, stack, photometric="minisblack")  # one page per slice
    else:
        np.save(src, stack)
    dst = str(tmp_path / f"out{suffix}")
    result = run_module("tomogan_tf.denoise", "--model", model_dir, "--input", src, "--output", dst)
    assert result.returncode == 0, result.stderr
    assert "denoised 3 slices of 40x24" in result.stdout
    if suffix == ".h5":
        with h5py.File(dst) as f:
            out = f["denoised"][...]
            assert f["denoised"].attrs["source_key"] == "test_ns"
    elif suffix == ".tif":
        import tifffile

        out = tifffile.imread(dst)
    else:
        out = np.load(dst)
    assert out.shape == stack.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, Denoiser.load(model_dir)(stack), rtol=1e-5, atol=1e-4)


def test_single_image_keeps_its_rank_and_integer_output_is_rounded(tmp_path):
    identity = write_model_dir(tmp_path / "id", identity_model(), Normalizer(0.0, 1e5))
    src, dst = str(tmp_path / "img.npy"), str(tmp_path / "out.npy")
    image = np.full((30, 30), 100.6, np.float32)
    image[0, :5] = [70000.0, -5.0, 2.4, 65535.4, 0.5]
    np.save(src, image)
    result = run_module(
        "tomogan_tf.denoise",
        "--model",
        identity,
        "--input",
        src,
        "--output",
        dst,
        "--dtype",
        "uint16",
    )
    assert result.returncode == 0, result.stderr
    out = np.load(dst)
    assert out.shape == (30, 30) and out.dtype == np.uint16
    assert list(out[0, :5]) == [65535, 0, 2, 65535, 0] and out[5, 5] == 101


def bad_input(tmp_path, kind):
    path = str(tmp_path / ("in.h5" if kind != "unreadable" else "in.npy"))
    if kind == "unreadable":
        with open(path, "wb") as f:
            f.write(b"not a numpy file")
        return path, []
    data = np.ones((2, 16, 16), np.float32)
    if kind == "nan":
        data[1, 3, 3] = np.nan
    with h5py.File(path, "w") as f:
        f["test_ns"] = data if kind != "rank" else np.ones((2, 2, 16, 16), np.float32)
    return path, (["--input_key", "nope"] if kind == "key" else [])


@pytest.mark.parametrize(
    "kind, problem",
    [
        ("key", "dataset 'nope' not found (datasets in file: test_ns)"),
        ("rank", "expected (H, W) or (N, H, W)"),
        ("nan", "NaN or Inf values in slice 1"),
        ("unreadable", "cannot read as .npy"),
        ("same", "is the input file"),
    ],
)
def test_bad_input_exits_2_and_leaves_no_output(tmp_path, model_dir, kind, problem):
    src, extra = bad_input(tmp_path, kind)
    dst = src if kind == "same" else str(tmp_path / "out.h5")
    before = Path(src).read_bytes()
    result = run_module(
        "tomogan_tf.denoise", "--model", model_dir, "--input", src, "--output", dst, *extra
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tomogan_tf.denoise: error: ")
    assert problem in lines[0]
    assert Path(src).read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == sorted(["run", os.path.basename(src)])


def test_existing_output_needs_overwrite(tmp_path, model_dir):
    src, dst = str(tmp_path / "in.npy"), str(tmp_path / "out.npy")
    np.save(src, np.ones((16, 16), np.float32))
    np.save(dst, np.zeros(3))
    result = run_module("tomogan_tf.denoise", "--model", model_dir, "--input", src, "--output", dst)
    assert result.returncode == 2 and "--overwrite" in result.stderr
    assert np.load(dst).shape == (3,)


def test_export_serves_any_size_and_matches_keras(tmp_path, exported):
    model_dir, target = exported
    assert target.endswith(os.path.join("tomogan", "1"))
    signature = tf.saved_model.load(target).signatures["serving_default"]
    den = Denoiser.load(model_dir)
    rng = np.random.default_rng(6)
    for shape in [(2, 37, 53, 1), (1, 64, 40, 1), (3, 7, 9, 1)]:
        noisy = rng.uniform(100, 300, shape).astype(np.float32)
        served = signature(noisy=tf.constant(noisy))["denoised"].numpy()
        assert served.shape == shape
        np.testing.assert_allclose(served[..., 0], den(noisy[..., 0]), rtol=1e-5, atol=1e-3)
    meta = json.loads(Path(target, "assets.extra", "tomogan_tf.json").read_text())
    assert meta["depth"] == 1 and meta["normalization"]["low"] == 100.0
    again = Denoiser.load(os.path.dirname(target))  # a TF Serving base folder works too
    np.testing.assert_allclose(again(noisy[..., 0]), den(noisy[..., 0]), rtol=1e-5, atol=1e-3)
    # The next export into the base folder is the next version (version 1 stays).
    assert export_savedmodel(model_dir, os.path.dirname(target)).endswith("2")


def test_export_refuses_an_existing_version(exported):
    model_dir, target = exported
    base, version = os.path.split(target)
    before = sorted(os.listdir(target))
    result = run_module(
        "tomogan_tf.export", "--model", model_dir, "--out", base, "--version", version
    )
    assert result.returncode == 2 and "already exists" in result.stderr
    assert not glob.glob(os.path.join(base, ".tmp*"))
    assert sorted(os.listdir(target)) == before  # the existing version is left alone


def test_saved_model_cli_runs_the_signature(tmp_path, exported):
    # saved_model_cli executes a signature the way TF Serving does.
    model_dir, target = exported
    noisy = np.random.default_rng(7).uniform(100, 300, (1, 21, 19, 1)).astype(np.float32)
    np.save(tmp_path / "noisy.npy", noisy)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            target,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"noisy={tmp_path / 'noisy.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    served = np.load(tmp_path / "out" / "denoised.npy")
    assert served.shape == (1, 21, 19, 1)
    expected = Denoiser.load(model_dir)(noisy[0, ..., 0])
    np.testing.assert_allclose(served[0, ..., 0], expected, rtol=1e-5, atol=1e-3)


def test_warmup_requests_replay_through_the_signatures(exported):
    """TF Serving replays assets.extra/tf_serving_warmup_requests on load: each record
    must parse as a PredictionLog and run through the signature it names."""
    from tomogan_tf.serving import WARMUP_2D, read_warmup_requests

    model_dir, target = exported
    requests = read_warmup_requests(target)
    assert [(tuple(r.inputs["noisy"].tensor_shape.dim[i].size for i in range(3)),
             r.model_spec.signature_name) for r in requests] == list(WARMUP_2D)  # fmt: skip
    assert {r.model_spec.name for r in requests} == {"tomogan"}
    loaded = tf.saved_model.load(target)
    denoiser = Denoiser.load(model_dir)
    for request in requests:
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        signature = loaded.signatures[request.model_spec.signature_name]
        assert set(inputs) == set(signature.structured_input_signature[1])
        served = signature(**inputs)["denoised"].numpy()
        noisy = inputs["noisy"].numpy()
        assert served.shape == (*noisy.shape[:3], 1) and np.all(np.isfinite(served))
        assert np.abs(served - noisy[..., :1]).max() > 0  # the model ran: not passed through
    first = tf.make_ndarray(requests[0].inputs["noisy"])[0, ..., 0]
    served = loaded.signatures["serving_default"](noisy=tf.constant(first[None, ..., None]))
    np.testing.assert_allclose(
        served["denoised"].numpy()[0, ..., 0], denoiser(first), rtol=1e-5, atol=1e-2
    )


def test_export_without_warmup_writes_no_warmup_file(tmp_path, random_generator):
    model_dir = write_model_dir(tmp_path / "run", random_generator)
    target = export_savedmodel(model_dir, str(tmp_path / "serving" / "m"), warmup=False)
    assert os.path.isfile(os.path.join(target, "assets.extra", "tomogan_tf.json"))
    assert not os.path.exists(os.path.join(target, "assets.extra", "tf_serving_warmup_requests"))


def test_mirrored_denoising_matches_one_device():
    """Each batch split over two logical CPU devices (an odd batch: the last share is
    padded): the same slices as on one device."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mirrored_denoise.py")
    done = subprocess.run(
        [sys.executable, script], cwd=str(Path(script).parents[2]), capture_output=True,
        text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(Path(script).parents[2])},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["replicas"] == 2
    assert figures["max_change"] > 1.0  # the model did change the slices
    assert figures["max_difference"] < 1e-3


def test_evaluate_reports_noisy_and_denoised_quality(tmp_path):
    from tomogan_tf.inference import evaluate

    rng = np.random.default_rng(8)
    clean = rng.uniform(150, 250, (3, 24, 24)).astype(np.float32)
    path = str(tmp_path / "pair.h5")
    with h5py.File(path, "w") as f:
        f["test_gt"], f["test_ns"] = clean, clean + rng.normal(0, 10, clean.shape)
    identity = Denoiser.load(write_model_dir(tmp_path / "id", neighbour_picker(1, 0)))
    result = evaluate(identity, path, "test_ns", "test_gt")
    assert result["slices"] == 3
    assert result["psnr"] == pytest.approx(result["psnr_noisy"], abs=1e-3)
    # noise sigma 10 in a window of 200: PSNR = 20 log10(200 / 10) = 26 dB
    assert result["psnr_noisy"] == pytest.approx(26.0, abs=0.5)


def test_colour_tiffs_and_tiny_images_are_refused(tmp_path, model_dir):
    import tifffile

    rgb = str(tmp_path / "rgb.tif")
    tifffile.imwrite(rgb, np.zeros((16, 16, 3), np.uint8), photometric="rgb")
    tiny = str(tmp_path / "tiny.npy")
    np.save(tiny, np.ones((3, 3), np.float32))
    for src, problem in ((rgb, "expected grey images (YX)"), (tiny, "smaller than 4 pixels")):
        result = run_module(
            "tomogan_tf.denoise",
            "--model",
            model_dir,
            "--input",
            src,
            "--output",
            str(tmp_path / "out.npy"),
        )
        assert result.returncode == 2 and problem in result.stderr, result.stderr
        assert not os.path.exists(tmp_path / "out.npy")


def test_compressed_tiff_stacks_are_read_a_batch_at_a_time(tmp_path, model_dir):
    import tifffile

    from tomogan_tf.data.sources import open_stack

    stack = np.random.default_rng(9).uniform(100, 300, (6, 24, 32)).astype(np.float32)
    path = str(tmp_path / "z.tif")
    tifffile.imwrite(path, stack, photometric="minisblack", compression="zlib")
    with open_stack(path) as source:
        assert source.shape == (6, 24, 32)
        np.testing.assert_array_equal(source.read([4, 1]), stack[[4, 1]])


def test_multi_scale_generators_denoise_and_export_their_full_resolution_output(tmp_path):
    from tomogan_tf.models.adl import adl_denoiser

    keras.utils.set_random_seed(1)
    adl = adl_denoiser(depth=1)  # outputs [full, half, quarter]
    model_dir = write_model_dir(tmp_path / "adl", adl)
    image = np.random.default_rng(10).uniform(100, 300, (40, 56)).astype(np.float32)
    den = Denoiser.load(model_dir, tile=4096)
    expected = NORM.invert(adl(NORM.apply(image)[None, ..., None])[0].numpy()[0, ..., 0])
    np.testing.assert_allclose(den(image), expected, rtol=1e-5)
    signature = tf.saved_model.load(export_savedmodel(model_dir, str(tmp_path / "m"))).signatures
    served = signature["serving_default"](noisy=tf.constant(image[None, ..., None]))["denoised"]
    np.testing.assert_allclose(served.numpy()[0, ..., 0], expected, rtol=1e-4, atol=1e-3)
