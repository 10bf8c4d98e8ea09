"""Image quality metrics, one definition for validation, evaluation and model cards."""

from __future__ import annotations

import tensorflow as tf


def image_metrics(reference, images) -> tuple[tf.Tensor, tf.Tensor]:
    """Per-image PSNR (dB) and SSIM of (batch, H, W, 1) images in normalised units.

    The data range is 1: the model's normalisation window (percentiles of its
    training data), so figures compare across runs of the same data.
    """
    reference, images = tf.cast(reference, tf.float32), tf.cast(images, tf.float32)
    return (
        tf.image.psnr(reference, images, max_val=1.0),
        tf.image.ssim(reference, images, max_val=1.0),
    )
