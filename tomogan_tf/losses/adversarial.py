"""Adversarial losses for a critic/discriminator that outputs unbounded logits.

``wgan-gp``  Wasserstein critic (the TomoGAN talk's formulation) made stable by a
             gradient penalty (Gulrajani et al. 2017); TomoGAN's default.
``wgan``     the talk's plain Wasserstein critic; kept Lipschitz by weight clipping
             (Arjovsky et al. 2017), as the talk gives no other constraint.
``bce``      non-saturating binary cross-entropy, what TomoGAN's released code ran
             and ImageDenoisingGAN's loss.
``hinge``    hinge loss (Lim & Ye 2017), ADL's.

A critic may return one logit map or a list of them (ADL judges at four scales):
each map's loss is averaged over its elements, then the maps are averaged.
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from tomogan_tf.choices import GAN_LOSSES


def check_gan_loss(kind: str) -> str:
    if kind not in GAN_LOSSES:
        raise ValueError(f"unknown gan_loss {kind!r}; choose one of {', '.join(GAN_LOSSES)}")
    return kind


def _maps(logits) -> list:
    maps = list(logits) if isinstance(logits, (list, tuple)) else [logits]
    if not maps:
        raise ValueError("no logit maps")
    return [ops.convert_to_tensor(m) for m in maps]


def _mean_over_maps(terms: list):
    return terms[0] if len(terms) == 1 else ops.mean(ops.stack(terms))


def discriminator_loss(kind: str, real_logits, fake_logits):
    """Loss the discriminator minimises (without the gradient penalty).

    For the Wasserstein kinds it is ``mean(D(G(x))) - mean(D(y))``, zero when the
    critic cannot tell fake from real; for ``hinge``
    ``mean(relu(1 - D(y))) + mean(relu(1 + D(G(x))))``.

    >>> float(discriminator_loss("hinge", [2.0, 0.5], [-2.0, 0.0]))
    0.75
    """
    check_gan_loss(kind)
    real, fake = _maps(real_logits), _maps(fake_logits)
    if len(real) != len(fake):
        raise ValueError(f"got {len(real)} real and {len(fake)} fake logit maps")
    terms = []
    for r, f in zip(real, fake, strict=True):
        if kind == "bce":
            terms.append(ops.mean(ops.softplus(-r)) + ops.mean(ops.softplus(f)))
        elif kind == "hinge":
            terms.append(ops.mean(ops.relu(1.0 - r)) + ops.mean(ops.relu(1.0 + f)))
        else:
            terms.append(ops.mean(f) - ops.mean(r))
    return _mean_over_maps(terms)


def generator_loss(kind: str, fake_logits):
    """Adversarial term of the generator: non-saturating BCE, or ``-mean(D(G(x)))``.

    >>> float(generator_loss("hinge", [[1.0, 3.0], [-1.0]]))
    -0.5
    """
    check_gan_loss(kind)
    if kind == "bce":
        return _mean_over_maps([ops.mean(ops.softplus(-f)) for f in _maps(fake_logits)])
    return _mean_over_maps([-ops.mean(f) for f in _maps(fake_logits)])


def gradient_penalty(critic, real, fake, seed=None):
    """WGAN-GP penalty ``mean((||grad D(x_hat)|| - 1)^2)`` on random interpolates.

    Works for images and volumes; a multi-map critic's maps are summed. Needs a
    second-order gradient, hence the explicit TensorFlow tape.
    """
    shape = tf.concat([tf.shape(real)[:1], tf.ones([tf.rank(real) - 1], tf.int32)], 0)
    if seed is None:
        alpha = tf.random.uniform(shape, dtype=real.dtype)
    else:
        alpha = tf.random.stateless_uniform(shape, seed=seed, dtype=real.dtype)
    mixed = real + alpha * (fake - real)
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        logits = critic(mixed, training=True)
    grads = tape.gradient(logits, mixed)
    axes = list(range(1, len(real.shape)))
    norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=axes) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))
