"""tomogan_tf.models.adl: ADL Efficient-UNet denoiser and discriminator, 2-D and 3-D."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import build_once, random_array, run_model_saving_test, run_model_test

from tomogan_tf.models.adl import adl_denoiser, adl_discriminator
from tomogan_tf.models.families import INPUT_MULTIPLE_ADL

CONV_TYPES = (
    keras.layers.Conv2D,
    keras.layers.Conv3D,
    keras.layers.Conv2DTranspose,
    keras.layers.Conv3DTranspose,
)


def layer_params(m: keras.Model, prefix: str) -> int:
    return sum(layer.count_params() for layer in m.layers if layer.name.startswith(prefix))


# count_params() includes the batch-norm moving statistics (2 per channel), as the
# TomoGAN counts do.
@pytest.mark.parametrize(
    "builder, kwargs, params",
    [
        (adl_denoiser, {}, 4_731_204),
        (adl_denoiser, {"depth": 3}, 4_747_428),
        (adl_denoiser, {"dims": 3}, 16_495_428),
        (adl_discriminator, {}, 609_976),
        (adl_discriminator, {"dims": 3}, 1_772_632),
    ],
    ids=["denoiser", "denoiser-depth3", "denoiser-3d", "discriminator", "discriminator-3d"],
)
def test_parameter_counts(builder, kwargs, params):
    assert build_once(builder, **kwargs).count_params() == params


def test_parameter_counts_by_hand():
    # Encoder block 1 (2-D, 1 input channel, 96 filters, no biases):
    #   conv1 3*3*1*96 = 864, bn1 4*96 = 384, conv2 3*3*96*96 = 82944,
    #   bn2 384, 1x1 shortcut 1*96 = 96; total 84672.
    assert layer_params(build_once(adl_denoiser), "enc1_") == 84_672
    # Three 3-D slices more per input channel: the 3x3 conv becomes 3x3x3 (27*96),
    # the shortcut stays 96, bn1 384: 2592 + 384 + 27*96*96 + 384 + 96 = 252288.
    assert layer_params(build_once(adl_denoiser, dims=3), "enc1_") == 252_288
    # Depth 3 adds 2 input channels to every conv reading the raw input:
    # enc1 conv1 9*96 + enc1 shortcut 96 + three 7x7 enhancer convs 3*49*48
    # + enhancer shortcut 96 = 8112 per channel.
    extra = (
        build_once(adl_denoiser, depth=3).count_params() - build_once(adl_denoiser).count_params()
    )
    assert extra == 2 * 8112


@pytest.mark.parametrize("height, width", [(48, 80), (40, 24)])
def test_denoiser_2d_outputs_full_half_quarter_in_unit_range(height, width):
    # 40x24 is a multiple of 8 but not 16: the bridge sits at H/8, so 8 suffices.
    assert INPUT_MULTIPLE_ADL == 8
    expected = [(1, height // f, width // f, 1) for f in (1, 2, 4)]
    x = random_array(1, height, width, 3)
    run_model_test(build_once(adl_denoiser, depth=3), x, expected, value_range=(0.0, 1.0))


def test_denoiser_3d_shapes_and_range():
    m = build_once(adl_denoiser, dims=3)
    # 16x32x48 symbolically (a real pass there costs ~165 G multiply-adds) ...
    specs = m.compute_output_spec(keras.KerasTensor((2, 16, 32, 48, 1)))
    assert [tuple(s.shape) for s in specs] == [
        (2, 16, 32, 48, 1),
        (2, 8, 16, 24, 1),
        (2, 4, 8, 12, 1),
    ]
    # ... and a real pass on a small volume.
    expected = [(1, 8, 16, 8, 1), (1, 4, 8, 4, 1), (1, 2, 4, 2, 1)]
    run_model_test(m, random_array(1, 8, 16, 8, 1), expected, value_range=(0.0, 1.0))


def test_discriminator_maps_at_four_scales():
    expected = [(2, 6, 10, 1), (2, 12, 20, 1), (2, 24, 40, 1), (2, 48, 80, 1)]
    run_model_test(build_once(adl_discriminator), random_array(2, 48, 80, 1), expected)
    # 3-D: every axis its own size, so that no two are confused.
    expected = [(1, 1, 2, 3, 1), (1, 2, 4, 6, 1), (1, 4, 8, 12, 1), (1, 8, 16, 24, 1)]
    run_model_test(build_once(adl_discriminator, dims=3), random_array(1, 8, 16, 24, 1), expected)


def test_discriminator_logits_are_unbounded():
    m = build_once(adl_discriminator)
    for name in ["bridge_out", "quarter_out", "half_out", "full_out"]:
        assert m.get_layer(name).activation is keras.activations.linear


@pytest.mark.parametrize(
    "kwargs, shape",
    [({}, (1, 24, 16, 1)), ({"dims": 3}, (1, 8, 16, 8, 1))],
    ids=["2d", "3d"],
)
def test_discriminator_traces_with_free_spatial_sizes(kwargs, shape):
    # A SavedModel signature has unknown H and W: no layer may need static sizes.
    batch, *spatial, _ = shape
    expected = [(batch, *(n // f for n in spatial), 1) for f in (8, 4, 2, 1)]
    m = build_once(adl_discriminator, **kwargs)
    run_model_test(m, random_array(*shape), expected, run_free_shape_check=True)


def test_size_not_a_multiple_of_eight_is_rejected():
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)):
        build_once(adl_discriminator)(random_array(1, 44, 48, 1))


@pytest.mark.parametrize(
    "builder, kwargs",
    [
        (adl_denoiser, {}),
        (adl_denoiser, {"dims": 3}),
        (adl_discriminator, {}),
        (adl_discriminator, {"dims": 3}),
    ],
    ids=["denoiser", "denoiser-3d", "discriminator", "discriminator-3d"],
)
def test_all_convolutions_are_bias_free(builder, kwargs):
    convs = [
        layer for layer in build_once(builder, **kwargs).layers if isinstance(layer, CONV_TYPES)
    ]
    assert len(convs) > 40
    assert not [layer.name for layer in convs if layer.use_bias]


def test_layer_choices_follow_the_paper():
    m = build_once(adl_denoiser)
    rates = [m.get_layer(f"enhancer_dil{r}").dilation_rate for r in (1, 2, 4)]
    assert rates == [(1, 1), (2, 2), (4, 4)]
    assert m.get_layer("enhancer_lrelu").negative_slope == pytest.approx(0.1)
    up = m.get_layer("dec1_up")
    assert isinstance(up, keras.layers.Conv2DTranspose) and up.strides == (2, 2)
    assert up.kernel_initializer.stddev == pytest.approx(0.02)
    # The enhancer joins the full-resolution skip: 96 upsampled + 96 + 96 channels.
    assert m.get_layer("dec3_res_conv1").kernel.shape == (3, 3, 288, 96)
    assert isinstance(
        build_once(adl_denoiser, dims=3).get_layer("dec1_up"), keras.layers.Conv3DTranspose
    )


@pytest.mark.parametrize(
    "kwargs, message",
    [({"dims": 4}, "dims"), ({"depth": 2}, "odd"), ({"depth": 3, "dims": 3}, "one channel")],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        adl_denoiser(**kwargs)
    if "depth" not in kwargs:
        with pytest.raises(ValueError, match=message):
            adl_discriminator(**kwargs)


@pytest.mark.parametrize(
    "builder, kwargs, shape",
    [(adl_denoiser, {}, (1, 16, 24, 1)), (adl_discriminator, {"dims": 3}, (1, 8, 8, 16, 1))],
    ids=["denoiser", "discriminator-3d"],
)
def test_round_trip_through_keras_file(builder, kwargs, shape):
    run_model_saving_test(build_once(builder, **kwargs), random_array(*shape))


def test_denoiser_outputs_stay_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        m = adl_denoiser()
    finally:
        keras.config.set_dtype_policy(previous)
    assert {o.dtype for o in m.outputs} == {"float32"}
    assert m.get_layer("enc1_conv1").compute_dtype == "float16"
    outputs = m(random_array(1, 16, 16, 1), training=False)
    assert all(np.asarray(o).dtype == np.float32 for o in outputs)
