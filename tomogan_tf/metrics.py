"""Image quality metrics, one definition for validation, evaluation and model cards."""

from __future__ import annotations

import tensorflow as tf


def image_metrics(reference, images) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-image PSNR (dB) and SSIM of (batch, H, W, 1) images in normalised units.

    The data range is 1: the model's normalisation window (percentiles of its
    training data), so figures compare across runs of the same data. Volumes
    (batch, D, H, W, 1) are scored slice by slice.
    """
    reference, images = tf.cast(reference, tf.float32), tf.cast(images, tf.float32)
    if len(images.shape) == 5:
        hw1 = tf.shape(images)[2:]
        reference = tf.reshape(reference, tf.concat([[-1], hw1], 0))
        images = tf.reshape(images, tf.concat([[-1], hw1], 0))
    return (
        tf.image.psnr(reference, images, max_val=1.0),
        tf.image.ssim(reference, images, max_val=1.0),
    )
