"""3-D (volumetric) denoising with adl3d, and the 2-D families adl and idgan, end to end.

The adl3d tests use the real 16.5 M-parameter network, randomly initialised and
seeded, on volumes thin in H and W so that each forward pass stays around a second
on a CPU. Such a network's output varies little (std ~0.01 in normalised units),
so tiling errors are also stated relative to that spread.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_module

from tomogan_tf import build_generator
from tomogan_tf.data import Normalizer
from tomogan_tf.data.sinks import SliceSink
from tomogan_tf.data.sources import ArrayStack, open_stack
from tomogan_tf.errors import InputError
from tomogan_tf.inference import MAX_MARGIN_3D, Denoiser
from tomogan_tf.inference.tiling import predict_tiled, receptive_field_radius
from tomogan_tf.models.padding import pad_to_multiple, pad_to_multiple_nd
from tomogan_tf.serving import export_savedmodel

NORM = Normalizer(100.0, 300.0)


def write_run_dir(directory, generator: keras.Model, family: str, normalizer=NORM) -> str:
    """A minimal run directory: ``generator_best.keras`` and its ``config.json``."""
    os.makedirs(directory, exist_ok=True)
    generator.save(os.path.join(directory, "generator_best.keras"))
    config = {"model": family, "depth": 1, "normalization": normalizer.to_dict()}
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f)
    return str(directory)


def full_resolution(generator: keras.Model) -> keras.Model:
    return keras.Model(generator.inputs, generator.outputs[0])


def reference(net: keras.Model, noisy: np.ndarray, normalizer: Normalizer, multiple: int):
    """The model's output for raw (batch, *spatial, C) input, padded in NumPy, cropped back."""
    pads = [(0, 0)] + [(0, -s % multiple) for s in noisy.shape[1:-1]] + [(0, 0)]
    x = normalizer.apply(np.pad(noisy, pads, mode="symmetric"))
    y = net(x, training=False).numpy()
    return normalizer.invert(y[tuple(slice(0, s) for s in noisy.shape[:-1])])


@pytest.fixture(scope="module")
def adl3d():
    keras.utils.set_random_seed(0)
    return build_generator("adl3d")


@pytest.fixture(scope="module")
def adl3d_net(adl3d):
    net = full_resolution(adl3d)
    run = tf.function(lambda x: net(x, training=False), reduce_retracing=True)
    return net, lambda x: run(tf.constant(x, tf.float32)).numpy()


@pytest.fixture(scope="module")
def adl3d_dir(tmp_path_factory, adl3d):
    return write_run_dir(tmp_path_factory.mktemp("adl3d"), adl3d, "adl3d")


def local_filter(radius: int = 1):
    """A cheap stand-in 3-D 'denoiser': a fixed random (2r+1)^3 convolution, zero-padded."""
    kernel = np.random.default_rng(5).normal(size=(2 * radius + 1,) * 3 + (1, 1))
    kernel = tf.constant(kernel, tf.float32)
    return lambda x: tf.nn.conv3d(x, kernel, [1] * 5, "SAME").numpy()


# ---------------------------------------------------------------------- padding and tiling
def test_nd_padding_mirrors_like_numpy_even_past_the_axis_length():
    for n in (1, 3, 4, 8, 13):
        x = np.arange(n * 5, dtype=np.float32).reshape(1, n, 5, 1)
        padded, sizes = pad_to_multiple_nd(x, 8, (1, 2))
        expected = np.pad(x, [(0, 0), (0, -n % 8), (0, 3), (0, 0)], mode="symmetric")
        np.testing.assert_array_equal(padded.numpy(), expected)
        assert [int(s) for s in sizes] == [n, 5]
    image = np.random.default_rng(0).random((2, 21, 6, 3)).astype(np.float32)
    old = tf.pad(image, [[0, 0], [0, 3], [0, 2], [0, 0]], mode="SYMMETRIC")  # the 2-D way
    np.testing.assert_array_equal(pad_to_multiple(image, 8)[0].numpy(), old.numpy())


def test_nd_tiling_is_exact_in_all_three_axes_for_a_local_filter():
    predict = local_filter(radius=2)
    volume = np.random.default_rng(1).random((1, 40, 48, 56, 1)).astype(np.float32)
    calls = []
    tiled = predict_tiled(predict, volume, 32, 8, 8, on_tile=lambda: calls.append(1))
    assert len(calls) == 2 * 3 * 4  # origins 0-8, 0-16 and 0-24, 8 apart
    np.testing.assert_allclose(tiled, predict(volume), atol=1e-5)


def test_adl3d_receptive_field_is_measured_on_a_thin_volume(adl3d_net):
    _, predict = adl3d_net
    radius = receptive_field_radius(predict, 1, 8, dims=3)
    adl = full_resolution(build_generator("adl"))
    # The 2-D ADL has the same topology with square kernels: the same radius per axis.
    assert radius == receptive_field_radius(lambda x: adl(x).numpy(), 1, 8) == 48


def test_adl3d_tiles_match_the_whole_volume_within_tolerance(adl3d_net):
    _, predict = adl3d_net
    volume = np.random.default_rng(2).random((1, 64, 16, 16, 1)).astype(np.float32)
    whole = predict(volume)
    errors = {}
    for margin, tile in ((MAX_MARGIN_3D, 56), (8, 32)):
        errors[margin] = np.abs(predict_tiled(predict, volume, tile, margin, 8) - whole).max()
    # Measured 1.8e-5 (0.2 % of the output's spread) at the default 3-D margin of 16,
    # against 3.8e-3 (40 %) with margin 8: the cap is where the error becomes negligible.
    assert errors[MAX_MARGIN_3D] < 1e-4 and errors[MAX_MARGIN_3D] < 0.01 * whole.std()
    assert errors[8] > 30 * errors[MAX_MARGIN_3D]


# ---------------------------------------------------------------------- Denoiser, 3-D
def test_volumes_stream_in_order_reading_each_slice_once():
    predict = local_filter(radius=1)
    den = Denoiser(predict, None, tile=40, margin=8, dims=3)
    volume = np.random.default_rng(3).random((150, 20, 12)).astype(np.float32)
    source = ArrayStack(volume, "volume")
    events = []
    original = source.read
    source.read = lambda indices: events.append(("read", list(indices))) or original(indices)
    out = np.full(volume.shape, np.nan, np.float32)

    def write(start, data):
        events.append(("write", start, len(data)))
        out[start : start + len(data)] = data

    den.stream(source, write)
    reads = [e[1] for e in events if e[0] == "read"]
    writes = [e[1:] for e in events if e[0] == "write"]
    assert max(len(r) for r in reads) <= 40  # one slab at a time
    assert sorted(i for r in reads for i in r) == list(range(150))  # overlaps are kept
    assert [s for s, _ in writes] == list(np.cumsum([0] + [k for _, k in writes])[:-1])
    assert sum(k for _, k in writes) == 150 and len(writes) == 8  # slabs 16 slices apart
    assert events.index(("read", reads[-1])) > events.index(("write", *writes[0]))
    padded = np.pad(volume, [(0, 2), (0, 4), (0, 4)], mode="symmetric")[None, ..., None]
    np.testing.assert_allclose(out, predict(padded)[0, :150, :20, :12, 0], atol=1e-5)


def test_adl3d_file_streams_like_the_in_memory_tiler(tmp_path, adl3d_dir, adl3d_net):
    _, predict = adl3d_net
    volume = np.random.default_rng(4).uniform(100, 300, (85, 13, 11)).astype(np.float32)
    path, out_path = str(tmp_path / "v.npy"), str(tmp_path / "out.npy")
    np.save(path, volume)
    den = Denoiser.load(adl3d_dir, tile=64, margin=16)
    reads = []
    with open_stack(path) as source, SliceSink(out_path, source.shape, "float32") as sink:
        original = source.read
        source.read = lambda indices: reads.append(len(indices)) or original(indices)
        den.denoise_file(source, sink, progress=False)
    assert reads == [64, 21]  # slab [0, 64), then [24, 88): 64..84 and mirrored 84..82
    streamed = np.load(out_path)
    padded = np.pad(volume, [(0, 3), (0, 3), (0, 5)], mode="symmetric")
    tiled = predict_tiled(predict, NORM.apply(padded)[None, ..., None], 64, 16, 8)
    np.testing.assert_allclose(streamed, NORM.invert(tiled[0, :85, :13, :11, 0]), atol=1e-4)
    whole = Denoiser.load(adl3d_dir)(volume)  # 88 <= the default 96-voxel cube: one pass
    assert np.abs(streamed - whole).max() / NORM.scale < 1e-4


def test_3d_models_refuse_single_images_batches_and_small_tiles(adl3d_dir):
    den = Denoiser.load(adl3d_dir)
    assert den.dims == 3 and den.tile == 96 and den.depth == 1
    with pytest.raises(InputError, match=r"3-D model denoises volumes \(N, H, W\)"):
        den(np.full((16, 16), 150.0, np.float32))
    with pytest.raises(InputError, match="--batch applies to 2-D models"):
        Denoiser.load(adl3d_dir, batch_size=4)
    with pytest.raises(InputError, match=r"--tile 32 leaves no room .* 16-voxel tile margin"):
        Denoiser(lambda x: x, None, tile=32, margin=16, dims=3)(np.ones((40, 8, 8)))


@pytest.mark.parametrize("suffix", [".h5", ".tif", ".npy"])
def test_cli_denoises_volumes_in_each_format(tmp_path, adl3d_dir, suffix):
    volume = np.random.default_rng(5).uniform(100, 300, (10, 12, 9)).astype(np.float32)
    src, dst = str(tmp_path / f"in{suffix}"), str(tmp_path / f"out{suffix}")
    if suffix == ".h5":
        with h5py.File(src, "w") as f:
            f["test_ns"] = volume
    elif suffix == ".tif":
        import tifffile

        tifffile.imwrite(src, volume, photometric="minisblack")
    else:
        np.save(src, volume)
    result = run_module("tomogan_tf.denoise", "--model", adl3d_dir, "--input", src, "--output", dst)
    assert result.returncode == 0, result.stderr
    assert "denoised a volume of 10x12x9" in result.stdout
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(src), os.path.basename(dst)])
    with open_stack(dst, "denoised") as out:
        denoised = out.read(list(range(10)))
    np.testing.assert_allclose(denoised, Denoiser.load(adl3d_dir)(volume), rtol=1e-5, atol=1e-4)


def test_3d_export_pads_volumes_in_the_graph_and_matches_keras(tmp_path, adl3d_dir, adl3d_net):
    net, _ = adl3d_net
    target = export_savedmodel(adl3d_dir, str(tmp_path / "adl3d"))
    meta = json.loads(Path(target, "assets.extra", "tomogan_tf.json").read_text())
    assert (meta["dims"], meta["depth"], meta["multiple"], meta["margin"]) == (3, 1, 8, 16)
    signature = tf.saved_model.load(target).signatures["serving_default"]
    rng = np.random.default_rng(6)
    for shape in [(1, 3, 13, 11, 1), (2, 8, 9, 8, 1)]:  # D=3 is mirrored past its length
        noisy = rng.uniform(100, 300, shape).astype(np.float32)
        served = signature(noisy=tf.constant(noisy))["denoised"].numpy()
        assert served.shape == shape
        np.testing.assert_allclose(served, reference(net, noisy, NORM, 8), atol=5e-4)
    served_den = Denoiser.load(target)
    assert (served_den.dims, served_den.margin) == (3, 16)
    np.testing.assert_allclose(
        served_den(noisy[1, ..., 0]), Denoiser.load(adl3d_dir)(noisy[1, ..., 0]), atol=5e-4
    )


# ---------------------------------------------------------------------- 2-D adl and idgan
UNIT = Normalizer(0.0, 1.0)


@pytest.fixture(scope="module", params=[("adl", 8, 48), ("idgan", 1, 19)], ids=lambda p: p[0])
def family_run(request, tmp_path_factory):
    """(family, input multiple, expected margin, full-resolution net, run directory)."""
    family, multiple, margin = request.param
    keras.utils.set_random_seed(7)
    generator = build_generator(family, depth=1)
    if family == "idgan":  # built as the identity (zero correction kernel): randomise it
        kernel = generator.get_layer("correction").kernel
        kernel.assign(np.random.default_rng(9).normal(0, 0.01, kernel.shape))
    net = full_resolution(generator) if family == "adl" else generator
    run_dir = write_run_dir(tmp_path_factory.mktemp(family), generator, family, UNIT)
    return family, multiple, margin, net, run_dir


def test_2d_families_denoise_whole_and_tiled(family_run):
    _, multiple, margin, net, run_dir = family_run
    den = Denoiser.load(run_dir)
    assert (den.dims, den.multiple, den.margin) == (2, multiple, margin)
    image = np.random.default_rng(8).random((1, 181, 163, 1)).astype(np.float32)
    whole = den(image[0, ..., 0])
    expected = reference(net, image, UNIT, multiple)[0, ..., 0]
    np.testing.assert_allclose(whole, expected, atol=1e-5)
    tiled = Denoiser.load(run_dir, tile=den.min_tile())(image[0, ..., 0])
    assert den.min_tile() < 163 and np.abs(tiled - whole).max() < 1e-3


def test_2d_families_export(tmp_path, family_run):
    _, multiple, margin, net, run_dir = family_run
    target = export_savedmodel(run_dir, str(tmp_path / "serving"))
    signature = tf.saved_model.load(target).signatures["serving_default"]
    small = np.random.default_rng(10).random((2, 21, 13, 1)).astype(np.float32)
    served = signature(noisy=tf.constant(small))["denoised"].numpy()
    np.testing.assert_allclose(served, reference(net, small, UNIT, multiple), atol=1e-4)
    served_den = Denoiser.load(target)
    assert (served_den.dims, served_den.multiple, served_den.margin) == (2, multiple, margin)
    np.testing.assert_allclose(served_den(small[1, ..., 0]), served[1, ..., 0], atol=1e-5)
