"""ADL Efficient-UNet and ImageDenoisingGAN models: sizes, shapes, serialisation."""

from __future__ import annotations

import functools

import keras
import numpy as np
import pytest
import tensorflow as tf

from tomogan_tf.models.adl import INPUT_MULTIPLE_ADL, adl_denoiser, adl_discriminator
from tomogan_tf.models.idgan import idgan_discriminator, idgan_generator

BUILDERS = {
    "adl_denoiser": adl_denoiser,
    "adl_discriminator": adl_discriminator,
    "idgan_generator": idgan_generator,
    "idgan_discriminator": idgan_discriminator,
}
CONV_TYPES = (
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)


@functools.cache
def model(builder: str, **kwargs) -> keras.Model:
    """Each model is built once per test session: building the U-Nets is the slow part."""
    return BUILDERS[builder](**kwargs)


def rand(*shape: int) -> np.ndarray:
    return np.random.default_rng(sum(shape)).random(shape).astype("float32")


def layer_params(m: keras.Model, prefix: str) -> int:
    return sum(layer.count_params() for layer in m.layers if layer.name.startswith(prefix))


# count_params() includes the batch-norm moving statistics (2 per channel), as the
# TomoGAN counts do.
@pytest.mark.parametrize(
    "builder, kwargs, params",
    [
        ("adl_denoiser", {}, 4_731_204),
        ("adl_denoiser", {"depth": 3}, 4_747_428),
        ("adl_denoiser", {"dims": 3}, 16_495_428),
        ("adl_discriminator", {}, 609_976),
        ("adl_discriminator", {"dims": 3}, 1_772_632),
        ("idgan_generator", {}, 1_078_593),
        ("idgan_generator", {"depth": 3}, 1_083_777),
        ("idgan_discriminator", {}, 1_557_937),
    ],
)
def test_parameter_counts(builder, kwargs, params):
    assert model(builder, **kwargs).count_params() == params


def test_parameter_counts_by_hand():
    # ADL encoder block 1 (2-D, 1 input channel, 96 filters, no biases):
    #   conv1 3*3*1*96 = 864, bn1 4*96 = 384, conv2 3*3*96*96 = 82944,
    #   bn2 384, 1x1 shortcut 1*96 = 96; total 84672.
    assert layer_params(model("adl_denoiser"), "enc1_") == 84_672
    # Three 3-D slices more per input channel: the 3x3 conv becomes 3x3x3 (27*96),
    # the shortcut stays 96, bn1 384: 2592 + 384 + 27*96*96 + 384 + 96 = 252288.
    assert layer_params(model("adl_denoiser", dims=3), "enc1_") == 252_288
    # Depth 3 adds 2 input channels to every conv reading the raw input:
    # enc1 conv1 9*96 + enc1 shortcut 96 + three 7x7 enhancer convs 3*49*48
    # + enhancer shortcut 96 = 8112 per channel.
    assert (
        model("adl_denoiser", depth=3).count_params() - model("adl_denoiser").count_params()
        == 2 * 8112
    )
    # IDGAN residual block: two 3x3 convs 128->128 without bias (147456 each) + two BNs
    # (512 each) = 295936; the discriminator's last conv is 4*4*384 + 1 bias = 6145.
    assert layer_params(model("idgan_generator"), "res1_") == 295_936
    assert model("idgan_discriminator").get_layer("logits").count_params() == 6145


@pytest.mark.parametrize("height, width", [(48, 80), (40, 24)])
def test_adl_denoiser_2d_outputs_full_half_quarter_in_unit_range(height, width):
    # 40x24 is a multiple of 8 but not 16: the bridge sits at H/8, so 8 suffices.
    assert INPUT_MULTIPLE_ADL == 8
    outputs = model("adl_denoiser", depth=3)(rand(1, height, width, 3))
    shapes = [tuple(o.shape) for o in outputs]
    assert shapes == [
        (1, height, width, 1),
        (1, height // 2, width // 2, 1),
        (1, height // 4, width // 4, 1),
    ]
    for o in outputs:
        assert o.dtype == tf.float32
        assert np.all((o.numpy() >= 0.0) & (o.numpy() <= 1.0))


def test_adl_denoiser_3d_shapes_and_range():
    m = model("adl_denoiser", dims=3)
    # 16x32x48 symbolically (a real pass there costs ~165 G multiply-adds) ...
    specs = m.compute_output_spec(keras.KerasTensor((2, 16, 32, 48, 1)))
    assert [tuple(s.shape) for s in specs] == [
        (2, 16, 32, 48, 1),
        (2, 8, 16, 24, 1),
        (2, 4, 8, 12, 1),
    ]
    # ... and a real pass on a small volume.
    outputs = m(rand(1, 8, 16, 8, 1))
    assert [tuple(o.shape) for o in outputs] == [(1, 8, 16, 8, 1), (1, 4, 8, 4, 1), (1, 2, 4, 2, 1)]
    for o in outputs:
        assert np.all((o.numpy() >= 0.0) & (o.numpy() <= 1.0))


def test_adl_discriminator_maps_at_four_scales():
    maps = model("adl_discriminator")(rand(2, 48, 80, 1))
    assert [tuple(m.shape) for m in maps] == [
        (2, 6, 10, 1),
        (2, 12, 20, 1),
        (2, 24, 40, 1),
        (2, 48, 80, 1),
    ]
    maps = model("adl_discriminator", dims=3)(rand(1, 16, 32, 48, 1))
    assert [tuple(m.shape) for m in maps] == [
        (1, 2, 4, 6, 1),
        (1, 4, 8, 12, 1),
        (1, 8, 16, 24, 1),
        (1, 16, 32, 48, 1),
    ]


def test_adl_discriminator_logits_are_unbounded():
    heads = ["bridge_out", "quarter_out", "half_out", "full_out"]
    m = model("adl_discriminator")
    for name in heads:
        assert m.get_layer(name).activation is keras.activations.linear


@pytest.mark.parametrize(
    "builder, kwargs, shape",
    [
        ("adl_discriminator", {}, (1, 24, 16, 1)),
        ("adl_discriminator", {"dims": 3}, (1, 8, 16, 8, 1)),
        ("idgan_generator", {}, (1, 13, 9, 1)),
    ],
)
def test_graph_with_free_spatial_sizes(builder, kwargs, shape):
    # A SavedModel signature has unknown H and W: no layer may need static sizes.
    m = model(builder, **kwargs)
    spec = tf.TensorSpec((None,) * (len(shape) - 1) + shape[-1:], tf.float32)
    graph = tf.function(lambda x: m(x, training=False), input_signature=[spec])
    for expected, got in zip(
        tf.nest.flatten(m(rand(*shape))), tf.nest.flatten(graph(rand(*shape))), strict=True
    ):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), atol=1e-6)


def test_adl_size_not_a_multiple_of_eight_is_rejected():
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        model("adl_discriminator")(rand(1, 44, 48, 1))


@pytest.mark.parametrize(
    "builder, kwargs",
    [
        ("adl_denoiser", {}),
        ("adl_denoiser", {"dims": 3}),
        ("adl_discriminator", {}),
        ("adl_discriminator", {"dims": 3}),
    ],
)
def test_all_adl_convolutions_are_bias_free(builder, kwargs):
    convs = [layer for layer in model(builder, **kwargs).layers if isinstance(layer, CONV_TYPES)]
    assert len(convs) > 40
    assert not [layer.name for layer in convs if layer.use_bias]


def test_adl_layer_choices_follow_the_paper():
    m = model("adl_denoiser")
    rates = [m.get_layer(f"enhancer_dil{r}").dilation_rate for r in (1, 2, 4)]
    assert rates == [(1, 1), (2, 2), (4, 4)]
    assert m.get_layer("enhancer_lrelu").negative_slope == pytest.approx(0.1)
    up = m.get_layer("dec1_up")
    assert isinstance(up, keras.layers.Conv2DTranspose) and up.strides == (2, 2)
    assert up.kernel_initializer.stddev == pytest.approx(0.02)
    # The enhancer joins the full-resolution skip: 96 upsampled + 96 + 96 channels.
    assert m.get_layer("dec3_res_conv1").kernel.shape == (3, 3, 288, 96)
    assert isinstance(
        model("adl_denoiser", dims=3).get_layer("dec1_up"), keras.layers.Conv3DTranspose
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [({"dims": 4}, "dims"), ({"depth": 2}, "odd"), ({"depth": 3, "dims": 3}, "one channel")],
)
def test_adl_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        adl_denoiser(**kwargs)


def test_idgan_generator_keeps_any_size_and_learns_a_residual():
    m = model("idgan_generator", depth=3)
    x = rand(2, 37, 53, 3)
    assert tuple(m(x).shape) == (2, 37, 53, 1)
    # With a zero correction the output is the centre slice (tanh(0) = 0).
    layer = m.get_layer("correction")
    saved = layer.get_weights()
    try:
        layer.set_weights([np.zeros_like(w) for w in saved])
        np.testing.assert_allclose(m(x).numpy(), x[..., 1:2], atol=1e-6)
    finally:
        layer.set_weights(saved)


def test_idgan_discriminator_patch_logits():
    m = model("idgan_discriminator")
    assert tuple(m(rand(2, 37, 53, 1)).shape) == (2, 5, 7, 1)
    assert m.get_layer("logits").activation is keras.activations.linear


def test_idgan_invalid_depth():
    with pytest.raises(ValueError, match="odd"):
        idgan_generator(depth=4)


@pytest.mark.parametrize(
    "builder, kwargs, shape",
    [
        ("adl_denoiser", {}, (1, 16, 24, 1)),
        ("adl_discriminator", {"dims": 3}, (1, 8, 8, 16, 1)),
        ("idgan_generator", {"depth": 3}, (1, 13, 17, 3)),
        ("idgan_discriminator", {}, (1, 16, 16, 1)),
    ],
)
def test_round_trip_through_keras_file(tmp_path, builder, kwargs, shape):
    m = model(builder, **kwargs)
    path = str(tmp_path / f"{builder}.keras")
    m.save(path)
    loaded = keras.models.load_model(path)
    x = rand(*shape)
    expected, got = m(x), loaded(x)
    if not isinstance(expected, list):
        expected, got = [expected], [got]
    assert len(got) == len(expected)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=0, atol=1e-6)


@pytest.mark.parametrize("builder", ["adl_denoiser", "idgan_generator"])
def test_outputs_stay_float32_under_mixed_precision(builder):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        m = BUILDERS[builder]()
    finally:
        keras.config.set_dtype_policy(previous)
    assert {o.dtype for o in m.outputs} == {"float32"}
