"""Each loss: its value where it is known, and that its gradient reaches the generator."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tomogan_tf import build_discriminator, build_generator
from tomogan_tf.errors import InputError
from tomogan_tf.losses import (
    GAN_LOSSES,
    VGGPerceptualLoss,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
    load_vgg,
    mean_squared_error,
)
from tomogan_tf.losses import perceptual as perceptual_module

RNG = np.random.default_rng(0)
NOISY = RNG.random((2, 32, 32, 1)).astype("float32")
CLEAN = RNG.random((2, 32, 32, 1)).astype("float32")


def generator_gradient_norm(loss_of_output) -> float:
    """Global norm of d loss / d generator weights (fixed initial weights)."""
    keras.utils.set_random_seed(1)
    g = build_generator("tomogan")
    with tf.GradientTape() as tape:
        loss = loss_of_output(g(NOISY, training=True))
    grads = tape.gradient(loss, g.trainable_variables)
    assert all(grad is not None for grad in grads)
    return float(tf.linalg.global_norm(grads))


@pytest.fixture(scope="module")
def random_vgg():
    keras.utils.set_random_seed(0)
    return keras.applications.VGG19(include_top=False, weights=None)


def test_mse_value_and_zero_for_identical():
    assert float(mean_squared_error(CLEAN, CLEAN)) == 0.0
    expected = np.mean((CLEAN - NOISY) ** 2)
    np.testing.assert_allclose(float(mean_squared_error(CLEAN, NOISY)), expected, rtol=1e-6)


def test_mse_gradient_reaches_generator():
    assert generator_gradient_norm(lambda out: mean_squared_error(CLEAN, out)) > 0


@pytest.mark.parametrize("kind", ["wgan", "wgan-gp"])
def test_wasserstein_critic_loss_is_zero_when_fake_equals_real(kind):
    logits = tf.constant([[0.3], [-1.2]])
    assert float(discriminator_loss(kind, logits, logits)) == 0.0
    assert float(discriminator_loss(kind, logits, logits - 1.0)) == pytest.approx(-1.0)
    assert float(generator_loss(kind, logits)) == pytest.approx(0.45)


def test_bce_losses_match_cross_entropy():
    real, fake = tf.constant([[2.0]]), tf.constant([[-1.0]])
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    ones, zeros = tf.ones([1, 1]), tf.zeros([1, 1])
    expected_d = float(bce(ones, real) + bce(zeros, fake))
    assert float(discriminator_loss("bce", real, fake)) == pytest.approx(expected_d, rel=1e-5)
    assert float(generator_loss("bce", fake)) == pytest.approx(float(bce(ones, fake)), rel=1e-5)


@pytest.mark.parametrize("kind", GAN_LOSSES)
def test_adversarial_gradient_reaches_generator(kind):
    keras.utils.set_random_seed(2)  # a critic whose ReLUs are not all dead on this input
    d = build_discriminator("tomogan", patch_size=32)
    assert generator_gradient_norm(lambda out: generator_loss(kind, d(out))) > 0


def test_unknown_gan_loss_is_rejected():
    with pytest.raises(ValueError, match="wgan-gp, wgan, bce"):
        generator_loss("lsgan", tf.zeros([1, 1]))


def test_gradient_penalty_is_taken_on_the_interpolates():
    # D(x) = sum(x^2) / 2 has gradient x: the penalty is mean((||x_hat|| - 1)^2) with
    # x_hat = real + alpha (fake - real), which differs from the value at real or fake.
    critic = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            keras.layers.Lambda(lambda x: 0.5 * tf.reduce_sum(x * x, [1, 2, 3])),
        ]
    )
    real, fake = RNG.random((4, 8, 8, 1), "float32"), RNG.random((4, 8, 8, 1), "float32")
    seed = tf.constant([3, 4])
    alpha = tf.random.stateless_uniform([4, 1, 1, 1], seed=seed).numpy()
    mixed = real + alpha * (fake - real)
    norms = np.sqrt((mixed**2).sum(axis=(1, 2, 3)))
    expected = np.mean((norms - 1.0) ** 2)
    assert float(gradient_penalty(critic, real, fake, seed=seed)) == pytest.approx(
        expected, rel=1e-4
    )
    at_real = np.mean((np.sqrt((real**2).sum(axis=(1, 2, 3))) - 1.0) ** 2)
    assert not np.isclose(expected, at_real, rtol=1e-3)


def test_gradient_penalty_trains_the_critic():
    d = build_discriminator("tomogan", patch_size=32)
    with tf.GradientTape() as tape:
        gp = gradient_penalty(d, CLEAN, NOISY)
    grads = tape.gradient(gp, d.trainable_variables)
    assert float(tf.linalg.global_norm([g for g in grads if g is not None])) > 0


def test_perceptual_loss_zero_for_identical_and_positive_otherwise(random_vgg):
    loss = VGGPerceptualLoss(random_vgg)
    assert float(loss(CLEAN, CLEAN)) == 0.0
    assert float(loss(CLEAN, NOISY)) > 0.0


def test_perceptual_gradient_reaches_generator(random_vgg):
    # TomoGAN's original computed VGG features in NumPy and got no gradient here.
    loss = VGGPerceptualLoss(random_vgg)
    assert generator_gradient_norm(lambda out: loss(CLEAN, out)) > 0
    assert not loss.features.trainable_variables


def test_vgg_weights_load_from_a_local_keras_weights_file(tmp_path, random_vgg):
    path = str(tmp_path / "vgg19.weights.h5")
    random_vgg.save_weights(path)
    loaded = load_vgg(path, "vgg19")
    x = RNG.random((1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(loaded(x).numpy(), random_vgg(x).numpy(), rtol=1e-5)


def test_vgg_weights_load_from_a_legacy_h5_file_like_keras_download(tmp_path, random_vgg):
    # Keras' ImageNet file is in the legacy HDF5 weights format.
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    path = str(tmp_path / perceptual_module.vgg_notop_file("vgg19"))
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
    build_generator("tomogan").save_weights(wrong)
    with pytest.raises(InputError, match="not a VGG19"):
        load_vgg(wrong, "vgg19")


def test_offline_imagenet_download_says_what_to_do(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid: None -- no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.applications.vgg19.file_utils.get_file", offline)
    with pytest.raises(InputError) as err:
        load_vgg("imagenet", "vgg19")
    message = str(err.value)
    assert perceptual_module.vgg_notop_file("vgg19") in message
    assert "--vgg_weights /path/to/file.h5" in message and "--vgg_weights none" in message
