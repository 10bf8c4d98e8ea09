"""VGG perceptual (feature) loss, differentiable end to end.

TomoGAN's original code computed the VGG features through NumPy, so this term gave
the generator no gradient at all. Here the frozen VGG trunk is part of the graph.
TomoGAN compares VGG19 ``block5_pool`` features, ImageDenoisingGAN VGG16
``block2_conv2``.
"""

from __future__ import annotations

import os

import keras
from keras import ops

from tomogan_tf.choices import VGG_NETWORKS
from tomogan_tf.errors import InputError

# Caffe preprocessing of Keras' VGG weights: BGR order, [0, 255] scale, ImageNet means.
_BGR_MEAN = (103.939, 116.779, 123.68)
_VGG_BUILDERS = {"vgg16": "VGG16", "vgg19": "VGG19"}  # keras.applications, by VGG_NETWORKS


def vgg_notop_file(arch: str) -> str:
    """File name of Keras' ImageNet weights without the classifier, e.g. for the cache."""
    return f"{arch}_weights_tf_dim_ordering_tf_kernels_notop.h5"


def load_vgg(weights: str, arch: str = "vgg19") -> keras.Model:
    """VGG16/19 without its classifier, from ``"imagenet"`` (Keras' download) or a local file.

    Any input size works. A failed download (no network) or an unreadable file
    becomes an `InputError` that says what to do instead.
    """
    if arch not in VGG_NETWORKS:
        raise ValueError(f"unknown VGG {arch!r}; choose one of {', '.join(VGG_NETWORKS)}")
    build = getattr(keras.applications, _VGG_BUILDERS[arch])
    if weights == "imagenet":
        try:
            return build(include_top=False, weights="imagenet")
        except Exception as err:  # Keras raises a bare Exception on fetch failures.
            name = vgg_notop_file(arch)
            cache = os.path.join(os.path.expanduser("~"), ".keras", "models", name)
            raise InputError(
                None,
                f"could not get the ImageNet {arch.upper()} weights ({err}). Without network"
                f" access, copy {name} to {cache}, or pass --vgg_weights /path/to/file.h5,"
                " or --vgg_weights none to train without the perceptual loss",
            ) from None
    if not os.path.isfile(weights):
        raise InputError(weights, f"{arch.upper()} weights file not found")
    try:
        return build(include_top=False, weights=weights)
    except Exception as err:
        raise InputError(weights, f"not a {arch.upper()} (no top) weights file: {err}") from None


class VGGPerceptualLoss:
    """MSE between VGG features of two single-channel images in normalised units.

    Images in [0, 1] are mapped to the [0, 255] grey levels VGG was trained on,
    repeated to three channels and mean-subtracted ('caffe' preprocessing).

    Args:
        vgg: a VGG trunk, e.g. from `load_vgg`.
        layer: feature layer; ``block5_pool`` as in TomoGAN.

    Example:
    >>> loss = VGGPerceptualLoss(keras.applications.VGG19(include_top=False, weights=None))
    >>> float(loss(ops.ones((1, 32, 32, 1)), ops.ones((1, 32, 32, 1))))
    0.0
    """

    def __init__(self, vgg: keras.Model, layer: str = "block5_pool"):
        try:
            output = vgg.get_layer(layer).output
        except ValueError:
            names = ", ".join(lay.name for lay in vgg.layers[1:])
            raise ValueError(f"{vgg.name} has no layer {layer!r}; it has {names}") from None
        self.features = keras.Model(vgg.input, output, name=f"vgg_{layer}")
        self.features.trainable = False
        # Poolings before the layer: inputs must be at least 2**poolings pixels.
        self.poolings = sum(
            isinstance(lay, keras.layers.MaxPooling2D) for lay in self.features.layers
        )

    def _embed(self, images):
        grey = ops.cast(images, "float32") * 255.0
        bgr = ops.concatenate([grey - mean for mean in _BGR_MEAN], axis=-1)
        return self.features(bgr, training=False)

    def __call__(self, y_true, y_pred):
        # float32 whatever the network computes in (mixed precision: 16-bit features).
        difference = ops.cast(self._embed(y_true), "float32") - ops.cast(
            self._embed(y_pred), "float32"
        )
        return ops.mean(ops.square(difference))
