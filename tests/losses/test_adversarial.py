"""tomogan_tf.losses.adversarial: GAN losses on logits, and the WGAN-GP penalty."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tomogan_tf.losses import GAN_LOSSES, discriminator_loss, generator_loss, gradient_penalty
from tomogan_tf.models.tomogan import tomogan_discriminator

RNG = np.random.default_rng(0)
NOISY = RNG.random((2, 32, 32, 1)).astype("float32")
CLEAN = RNG.random((2, 32, 32, 1)).astype("float32")


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


def test_hinge_losses_hand_computed():
    real, fake = np.array([2.0, 0.5]), np.array([-2.0, 0.0])
    # relu(1 - real) = [0, 0.5], relu(1 + fake) = [0, 1]
    assert float(discriminator_loss("hinge", real, fake)) == pytest.approx(0.25 + 0.5)
    # A second map: relu(1 - 0) = 1, relu(1 + 1) = 2; the two maps are averaged.
    d = discriminator_loss("hinge", [real, np.array([0.0])], [fake, np.array([1.0])])
    assert float(d) == pytest.approx((0.75 + 3.0) / 2)
    assert float(generator_loss("hinge", fake)) == pytest.approx(1.0)
    two_maps = (np.array([1.0, 3.0]), np.array([-1.0]))
    assert float(generator_loss("hinge", two_maps)) == pytest.approx((-2.0 + 1.0) / 2)
    with pytest.raises(ValueError, match="2 real and 1 fake"):
        discriminator_loss("hinge", [real, real], [fake])


@pytest.mark.parametrize("kind", GAN_LOSSES)
def test_adversarial_gradient_reaches_generator(kind, generator_gradient_norm):
    keras.utils.set_random_seed(2)  # a critic whose ReLUs are not all dead on this input
    d = tomogan_discriminator(patch_size=32)
    assert generator_gradient_norm(lambda out: generator_loss(kind, d(out)), NOISY) > 0


def test_unknown_gan_loss_is_rejected():
    with pytest.raises(ValueError, match="wgan-gp, wgan, bce, hinge"):
        generator_loss("lsgan", tf.zeros([1, 1]))
    with pytest.raises(ValueError, match="unknown gan_loss 'lsgan'"):
        discriminator_loss("lsgan", tf.zeros([1, 1]), tf.zeros([1, 1]))


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
    d = tomogan_discriminator(patch_size=32)
    with tf.GradientTape() as tape:
        gp = gradient_penalty(d, CLEAN, NOISY)
    grads = tape.gradient(gp, d.trainable_variables)
    assert float(tf.linalg.global_norm([g for g in grads if g is not None])) > 0
