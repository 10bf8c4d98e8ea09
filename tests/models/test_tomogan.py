"""tomogan_tf.models.tomogan: TomoGAN generator and discriminator, exact sizes and shapes."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import random_array, run_model_saving_test, run_model_test

from tomogan_tf.models.tomogan import tomogan_discriminator, tomogan_generator


@pytest.mark.parametrize("depth, params", [(1, 694897), (3, 694913)])
def test_generator_parameter_count_matches_paper(depth, params):
    assert tomogan_generator(depth=depth).count_params() == params


def test_generator_has_sixteen_convolutions():
    layers = tomogan_generator().layers
    convs = [layer for layer in layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 16


def test_discriminator_parameter_count_at_patch_256():
    assert tomogan_discriminator(patch_size=256).count_params() == 673477


@pytest.mark.parametrize("height, width, depth", [(8, 8, 1), (24, 40, 3), (64, 16, 5)])
def test_generator_accepts_any_multiple_of_eight(height, width, depth):
    x = random_array(2, height, width, depth, seed=0)
    run_model_test(tomogan_generator(depth=depth), x, (2, height, width, 1))


def test_generator_traces_with_free_sizes():
    g = tomogan_generator(depth=3)
    run_model_test(g, random_array(1, 16, 24, 3), (1, 16, 24, 1), run_free_shape_check=True)


def test_discriminator_outputs_one_logit_per_image():
    d = tomogan_discriminator(patch_size=32)
    run_model_test(d, np.zeros((3, 32, 32, 1), "float32"), (3, 1))
    assert d.get_layer("logit").activation is keras.activations.linear


def test_residual_generator_is_identity_plus_learned_correction():
    g = tomogan_generator(depth=3, residual=True)
    head = g.get_layer("head_out")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    x = random_array(1, 16, 16, 3, seed=1)
    np.testing.assert_allclose(g(x).numpy(), x[..., 1:2], atol=1e-6)


@pytest.mark.parametrize("depth", [0, 2])
def test_even_depth_is_rejected(depth):
    with pytest.raises(ValueError, match="odd"):
        tomogan_generator(depth=depth)


@pytest.mark.parametrize("patch_size", [4, 12])
def test_discriminator_patch_size_must_be_a_multiple_of_eight(patch_size):
    with pytest.raises(ValueError, match="multiple of 8"):
        tomogan_discriminator(patch_size=patch_size)


@pytest.mark.parametrize(
    "build, shape",
    [
        (lambda: tomogan_generator(depth=3, residual=True), (1, 16, 24, 3)),
        (lambda: tomogan_discriminator(patch_size=16), (2, 16, 16, 1)),
    ],
    ids=["generator", "discriminator"],
)
def test_round_trip_through_keras_file(build, shape):
    run_model_saving_test(build(), random_array(*shape, seed=2))
