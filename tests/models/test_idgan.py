"""tomogan_tf.models.idgan: ImageDenoisingGAN generator and patch discriminator."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import build_once, random_array, run_model_saving_test, run_model_test

from tomogan_tf.models.idgan import idgan_discriminator, idgan_generator


def layer_params(m: keras.Model, prefix: str) -> int:
    return sum(layer.count_params() for layer in m.layers if layer.name.startswith(prefix))


@pytest.mark.parametrize(
    "builder, kwargs, params",
    [
        (idgan_generator, {}, 1_078_593),
        (idgan_generator, {"depth": 3}, 1_083_777),
        (idgan_discriminator, {}, 1_557_937),
    ],
    ids=["generator", "generator-depth3", "discriminator"],
)
def test_parameter_counts(builder, kwargs, params):
    assert build_once(builder, **kwargs).count_params() == params


def test_parameter_counts_by_hand():
    # Residual block: two 3x3 convs 128->128 without bias (147456 each) + two BNs
    # (512 each) = 295936; the discriminator's last conv is 4*4*384 + 1 bias = 6145.
    assert layer_params(build_once(idgan_generator), "res1_") == 295_936
    assert build_once(idgan_discriminator).get_layer("logits").count_params() == 6145


def test_generator_keeps_any_size_and_learns_a_residual():
    m = build_once(idgan_generator, depth=3)
    x = random_array(2, 37, 53, 3)
    run_model_test(m, x, (2, 37, 53, 1))
    # With a zero correction the output is the centre slice (tanh(0) = 0).
    layer = m.get_layer("correction")
    saved = layer.get_weights()
    try:
        layer.set_weights([np.zeros_like(w) for w in saved])
        np.testing.assert_allclose(m(x).numpy(), x[..., 1:2], atol=1e-6)
    finally:
        layer.set_weights(saved)


def test_untrained_generator_is_the_identity():
    # The correction conv is zero-initialised: training starts from the identity.
    x = random_array(1, 9, 11, 1)
    np.testing.assert_allclose(idgan_generator()(x, training=False).numpy(), x, atol=1e-6)


def test_generator_traces_with_free_spatial_sizes():
    # A SavedModel signature has unknown H and W: no layer may need static sizes.
    m = build_once(idgan_generator)
    run_model_test(m, random_array(1, 13, 9, 1), (1, 13, 9, 1), run_free_shape_check=True)


def test_discriminator_patch_logits():
    m = build_once(idgan_discriminator)
    run_model_test(m, random_array(2, 37, 53, 1), (2, 5, 7, 1))
    assert m.get_layer("logits").activation is keras.activations.linear


def test_invalid_depth():
    with pytest.raises(ValueError, match="odd"):
        idgan_generator(depth=4)


@pytest.mark.parametrize(
    "builder, kwargs, shape",
    [(idgan_generator, {"depth": 3}, (1, 13, 17, 3)), (idgan_discriminator, {}, (1, 16, 16, 1))],
    ids=["generator", "discriminator"],
)
def test_round_trip_through_keras_file(builder, kwargs, shape):
    run_model_saving_test(build_once(builder, **kwargs), random_array(*shape))


def test_generator_outputs_stay_float32_under_mixed_precision():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        m = idgan_generator()
    finally:
        keras.config.set_dtype_policy(previous)
    assert {o.dtype for o in m.outputs} == {"float32"}
    assert m.get_layer("stem_conv").compute_dtype == "float16"
    assert np.asarray(m(random_array(1, 8, 8, 1), training=False)).dtype == np.float32
