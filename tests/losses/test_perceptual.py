"""tomogan_tf.losses.perceptual: the VGG feature loss and loading VGG weights."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest

# Keras writes its ImageNet VGG file in this legacy format; no public API writes it.
from keras.src.legacy.saving import legacy_h5_format

from tomogan_tf.errors import InputError
from tomogan_tf.losses import VGGPerceptualLoss, load_vgg
from tomogan_tf.losses.perceptual import vgg_notop_file
from tomogan_tf.models.tomogan import tomogan_generator

RNG = np.random.default_rng(0)
NOISY = RNG.random((2, 32, 32, 1)).astype("float32")
CLEAN = RNG.random((2, 32, 32, 1)).astype("float32")


@pytest.fixture(scope="module")
def random_vgg():
    keras.utils.set_random_seed(0)
    return keras.applications.VGG19(include_top=False, weights=None)


def test_perceptual_loss_zero_for_identical_and_positive_otherwise(random_vgg):
    loss = VGGPerceptualLoss(random_vgg)
    assert float(loss(CLEAN, CLEAN)) == 0.0
    assert float(loss(CLEAN, NOISY)) > 0.0


def test_perceptual_gradient_reaches_generator(random_vgg, generator_gradient_norm):
    # TomoGAN's original computed VGG features in NumPy and got no gradient here.
    loss = VGGPerceptualLoss(random_vgg)
    assert generator_gradient_norm(lambda out: loss(CLEAN, out), NOISY) > 0
    assert not loss.features.trainable_variables


def test_unknown_feature_layer_lists_the_layers(random_vgg):
    with pytest.raises(ValueError, match="has no layer 'block9_pool'; it has block1_conv1"):
        VGGPerceptualLoss(random_vgg, layer="block9_pool")


def test_vgg_weights_load_from_a_local_keras_weights_file(tmp_path, random_vgg):
    path = str(tmp_path / "vgg19.weights.h5")
    random_vgg.save_weights(path)
    loaded = load_vgg(path, "vgg19")
    x = RNG.random((1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), random_vgg(x).numpy(), rtol=1e-5)


def test_vgg_weights_load_from_a_legacy_h5_file_like_keras_download(tmp_path, random_vgg):
    path = str(tmp_path / vgg_notop_file("vgg19"))
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, random_vgg)
    loaded = load_vgg(path, "vgg19")
    x = RNG.random((1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), random_vgg(x).numpy(), rtol=1e-5)


@pytest.mark.filterwarnings("ignore:Skipping nested container")  # Keras, on the wrong file
def test_missing_or_wrong_vgg_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="VGG19 weights file not found"):
        load_vgg(str(tmp_path / "missing.h5"), "vgg19")
    wrong = str(tmp_path / "small.weights.h5")
    tomogan_generator().save_weights(wrong)
    with pytest.raises(InputError, match="not a VGG19"):
        load_vgg(wrong, "vgg19")
    with pytest.raises(ValueError, match="unknown VGG 'vgg11'; choose one of vgg16, vgg19"):
        load_vgg(wrong, "vgg11")


def test_offline_imagenet_download_says_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid: None -- no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.applications.vgg19.file_utils.get_file", offline)
    with pytest.raises(InputError) as err:
        load_vgg("imagenet", "vgg19")
    message = str(err.value)
    assert vgg_notop_file("vgg19") in message
    assert "--vgg_weights /path/to/file.h5" in message and "--vgg_weights none" in message
