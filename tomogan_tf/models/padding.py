"""Padding images and volumes to the sizes a network's pooling needs."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import tensorflow as tf


def mirror_index(index, length):
    """Where padded position ``index`` reads from an axis of ``length``: mirrored, edge repeated.

    Periodic with period ``2 * length``, so it is defined however far past the end
    ``index`` lies (a 1-slice volume padded to 8 repeats that slice). Works on
    Python ints, NumPy arrays and tensors.

    Example:
    >>> [int(mirror_index(i, 3)) for i in range(8)]
    [0, 1, 2, 2, 1, 0, 0, 1]
    """
    j = index % (2 * length)
    if tf.is_tensor(j):
        return tf.where(j < length, j, 2 * length - 1 - j)
    return np.where(j < length, j, 2 * length - 1 - j)


def pad_to_multiple_nd(
    images, multiple: int, axes: Sequence[int]
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Mirror-pad ``axes`` of ``images`` at their ends to multiples of ``multiple``.

    Symmetric mirroring (edge pixel repeated, as ``tf.pad(mode="SYMMETRIC")``),
    continued periodically where the pad is longer than the axis, so any size
    works. Returns the padded tensor and the original sizes along ``axes``, for
    cropping back; works in graphs with unknown sizes.

    Example:
    >>> padded, sizes = pad_to_multiple_nd(tf.ones((1, 3, 21, 27, 1)), 8, (1, 2, 3))
    >>> padded.shape, [int(s) for s in sizes]
    (TensorShape([1, 8, 24, 32, 1]), [3, 21, 27])
    """
    padded = tf.convert_to_tensor(images)
    sizes = []
    for axis in axes:
        size = tf.shape(padded)[axis]
        sizes.append(size)
        target = (size + multiple - 1) // multiple * multiple
        if isinstance(padded.shape[axis], int) and padded.shape[axis] % multiple == 0:
            continue  # statically aligned already: skip the copy
        padded = tf.gather(padded, mirror_index(tf.range(target), size), axis=axis)
    return padded, sizes


def pad_to_multiple(images, multiple: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Mirror-pad (batch, H, W, C) at the bottom and right to multiples of ``multiple``.

    `pad_to_multiple_nd` over H and W. Returns the padded images and the original
    H and W for cropping back.

    Example:
    >>> padded, h, w = pad_to_multiple(tf.ones((1, 21, 27, 1)), 8)
    >>> padded.shape, int(h), int(w)
    (TensorShape([1, 24, 32, 1]), 21, 27)
    """
    padded, (height, width) = pad_to_multiple_nd(images, multiple, (1, 2))
    return padded, height, width
