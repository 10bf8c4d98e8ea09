"""Adversarial losses for a critic/discriminator that outputs unbounded logits.

``wgan-gp``  Wasserstein critic (the TomoGAN talk's formulation) made stable by a
             gradient penalty (Gulrajani et al. 2017); the default.
``wgan``     the talk's plain Wasserstein critic; kept Lipschitz by weight clipping
             (Arjovsky et al. 2017), as the talk gives no other constraint.
``bce``      non-saturating binary cross-entropy, what TomoGAN's released code ran.
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops

GAN_LOSSES = ("wgan-gp", "wgan", "bce")


def check_gan_loss(kind: str) -> str:
    if kind not in GAN_LOSSES:
        raise ValueError(f"unknown gan_loss {kind!r}; choose one of {', '.join(GAN_LOSSES)}")
    return kind


def discriminator_loss(kind: str, real_logits, fake_logits):
    """Loss the discriminator minimises (without the gradient penalty).

    For the Wasserstein kinds it is ``mean(D(G(x))) - mean(D(y))``, zero when the
    critic cannot tell fake from real.
    """
    if check_gan_loss(kind) == "bce":
        return ops.mean(ops.softplus(-real_logits)) + ops.mean(ops.softplus(fake_logits))
    return ops.mean(fake_logits) - ops.mean(real_logits)


def generator_loss(kind: str, fake_logits):
    """Adversarial term of the generator: ``-mean(D(G(x)))`` or non-saturating BCE."""
    if check_gan_loss(kind) == "bce":
        return ops.mean(ops.softplus(-fake_logits))
    return -ops.mean(fake_logits)


def gradient_penalty(critic, real, fake, seed=None):
    """WGAN-GP penalty ``mean((||grad D(x_hat)|| - 1)^2)`` on random interpolates.

    Needs a second-order gradient, hence the explicit TensorFlow tape.
    """
    batch = tf.shape(real)[0]
    if seed is None:
        alpha = tf.random.uniform([batch, 1, 1, 1], dtype=real.dtype)
    else:
        alpha = tf.random.stateless_uniform([batch, 1, 1, 1], seed=seed, dtype=real.dtype)
    mixed = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        logits = critic(mixed, training=True)
    grads = tape.gradient(logits, mixed)
    norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))
