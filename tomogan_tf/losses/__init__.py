"""Losses: pixel fidelity, adversarial, perceptual."""

from tomogan_tf.losses.adversarial import (
    GAN_LOSSES,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from tomogan_tf.losses.perceptual import VGGPerceptualLoss, load_vgg19
from tomogan_tf.losses.pixel import mean_squared_error

__all__ = [
    "GAN_LOSSES",
    "VGGPerceptualLoss",
    "discriminator_loss",
    "generator_loss",
    "gradient_penalty",
    "load_vgg19",
    "mean_squared_error",
]
