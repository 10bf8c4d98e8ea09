"""Padding images to the sizes a network's pooling needs."""

from __future__ import annotations

import tensorflow as tf


def pad_to_multiple(images, multiple: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Mirror-pad (batch, H, W, C) at the bottom and right to multiples of ``multiple``.

    Symmetric mirroring (edge pixel repeated) needs H, W >= ``multiple // 2``.
    Returns the padded images and the original H and W for cropping back.

    Example:
    >>> padded, h, w = pad_to_multiple(tf.ones((1, 21, 27, 1)), 8)
    >>> padded.shape, int(h), int(w)
    (TensorShape([1, 24, 32, 1]), 21, 27)
    """
    images = tf.convert_to_tensor(images)
    height, width = tf.shape(images)[1], tf.shape(images)[2]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    padded = tf.pad(images, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]], mode="SYMMETRIC")
    return padded, height, width
