"""TomoGAN generator and discriminator: exact sizes, shapes, serialisation."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from tomogan_tf import build_discriminator, build_generator
from tomogan_tf.models.layers import CentreSlice


@pytest.mark.parametrize("depth, params", [(1, 694897), (3, 694913)])
def test_generator_parameter_count_matches_paper(depth, params):
    assert build_generator("tomogan", depth=depth).count_params() == params


def test_generator_has_sixteen_convolutions():
    layers = build_generator("tomogan").layers
    convs = [layer for layer in layers if isinstance(layer, keras.layers.Conv2D)]
    assert len(convs) == 16


def test_discriminator_parameter_count_at_patch_256():
    assert build_discriminator("tomogan", patch_size=256).count_params() == 673477


@pytest.mark.parametrize("height, width, depth", [(8, 8, 1), (24, 40, 3), (64, 16, 5)])
def test_generator_accepts_any_multiple_of_eight(height, width, depth):
    g = build_generator("tomogan", depth=depth)
    x = np.random.default_rng(0).random((2, height, width, depth)).astype("float32")
    assert tuple(g(x).shape) == (2, height, width, 1)


def test_discriminator_outputs_one_logit_per_image():
    d = build_discriminator("tomogan", patch_size=32)
    assert tuple(d(np.zeros((3, 32, 32, 1), "float32")).shape) == (3, 1)


def test_residual_generator_is_identity_plus_learned_correction():
    g = build_generator("tomogan", depth=3, residual=True)
    head = g.get_layer("head_out")
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])
    x = np.random.default_rng(1).random((1, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(g(x).numpy(), x[..., 1:2], atol=1e-6)


def test_unknown_family_is_named_in_the_error():
    known = "unknown model family 'nope'; known: tomogan, adl, adl3d, idgan"
    with pytest.raises(ValueError, match=known):
        build_generator("nope")


@pytest.mark.parametrize("depth", [0, 2])
def test_even_depth_is_rejected(depth):
    with pytest.raises(ValueError, match="odd"):
        build_generator("tomogan", depth=depth)


def test_generator_round_trips_through_keras_file(tmp_path):
    g = build_generator("tomogan", depth=3, residual=True)
    path = str(tmp_path / "g.keras")
    g.save(path)
    loaded = keras.models.load_model(path)
    x = np.random.default_rng(2).random((1, 16, 24, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), g(x).numpy(), atol=1e-6)


def test_centre_slice_config_round_trips():
    layer = CentreSlice(name="c")
    clone = CentreSlice.from_config(layer.get_config())
    x = np.arange(2 * 5, dtype="float32").reshape(1, 1, 2, 5)
    np.testing.assert_array_equal(clone(x).numpy(), x[..., 2:3])
