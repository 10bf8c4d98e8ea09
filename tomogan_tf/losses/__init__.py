"""Losses: reconstruction (pixel, pyramid, histogram), smoothness, adversarial, perceptual."""

from tomogan_tf.losses.adl import atrous_pyramid, histogram_loss, pyramid_loss, soft_histogram
from tomogan_tf.losses.adversarial import (
    GAN_LOSSES,
    discriminator_loss,
    generator_loss,
    gradient_penalty,
)
from tomogan_tf.losses.perceptual import VGG_NETWORKS, VGGPerceptualLoss, load_vgg
from tomogan_tf.losses.pixel import mean_absolute_error, mean_squared_error, smoothness_loss
from tomogan_tf.losses.reconstruction import (
    MASKABLE_TERMS,
    RECONSTRUCTION_TERMS,
    as_outputs,
    downscale_targets,
    masked_reconstruction_loss,
    reconstruction_loss,
)

__all__ = [
    "GAN_LOSSES",
    "MASKABLE_TERMS",
    "RECONSTRUCTION_TERMS",
    "VGG_NETWORKS",
    "VGGPerceptualLoss",
    "as_outputs",
    "atrous_pyramid",
    "discriminator_loss",
    "downscale_targets",
    "generator_loss",
    "gradient_penalty",
    "histogram_loss",
    "load_vgg",
    "masked_reconstruction_loss",
    "mean_absolute_error",
    "mean_squared_error",
    "pyramid_loss",
    "reconstruction_loss",
    "smoothness_loss",
    "soft_histogram",
]
