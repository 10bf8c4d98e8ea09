"""The named options a user picks by flag or setting, in one TensorFlow-free module.

The command-line tools check a flag's value (``--gan_loss``, ``--mask``, ...) before
TensorFlow loads, so the allowed names cannot live only in the modules that
implement them, which import TensorFlow. They are declared here once; each
implementing module imports its names from here and refuses any other (as CAREamics
keeps its supported losses and algorithms in one ``support`` module). Model
families, which carry more than a name, are `tomogan_tf.models.families`; data
layouts register themselves in `tomogan_tf.data.layouts`.
"""

from __future__ import annotations

# Adversarial losses (`tomogan_tf.losses.adversarial`).
GAN_LOSSES = ("wgan-gp", "wgan", "bce", "hinge")

# ImageNet VGG networks of the perceptual loss (`tomogan_tf.losses.perceptual`).
VGG_NETWORKS = ("vgg16", "vgg19")

# Noise2Self masks and the fills of the grid mask (`tomogan_tf.data.masking`).
MASKS = ("grid", "random")
GRID_FILLS = ("mean", "zero")

# How a trained model is applied: directly, J-invariantly for a Noise2Self model
# (`tomogan_tf.inference.predict`), or to the K held-out means of a Noise2Inverse
# model's sub-reconstructions, averaged (`tomogan_tf.inference.denoiser`).
INFERENCE = ("direct", "jinv", "n2i")

# Distribution strategies of training (`tomogan_tf.training.distribute`).
STRATEGIES = ("auto", "none", "mirrored", "multiworker")
# ... and those of denoising on one machine (`tomogan_tf.inference.loaders`); across
# machines, denoising is sharded (`tomogan_tf.data.shards`).
INFERENCE_STRATEGIES = ("auto", "none", "mirrored")
