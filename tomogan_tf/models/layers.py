"""Small layers shared by the model families, serialisable in `.keras` files."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops


@keras.saving.register_keras_serializable(package="tomogan_tf")
class CentreSlice(keras.layers.Layer):
    """Pick the centre channel of a stack of adjacent slices.

    A residual denoiser subtracts its noise estimate from the slice it denoises,
    which is the centre one of the ``depth`` slices stacked as channels.

    Example:
    >>> CentreSlice()(keras.ops.ones((1, 8, 8, 3))).shape
    (1, 8, 8, 1)
    """

    def call(self, inputs):
        centre = ops.shape(inputs)[-1] // 2
        return ops.take(inputs, ops.reshape(centre, (1,)), axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package="tomogan_tf")
class BilinearUpsample2x(keras.layers.Layer):
    """Bilinear x2 upsampling (half-pixel centres, edges clamped) for any input size.

    ``UpSampling2D(2, interpolation="bilinear")`` needs static sizes, so it cannot
    serve a SavedModel with free H and W; this layer resizes to twice the run-time
    size. It used to spell out the 0.25/0.75 stencil in gathers and concatenations
    (the same values): 804 graph ops forward and backward against the resize's 29,
    which traced 20x slower (``python bench/bench_upsample.py``) and made every
    TomoGAN training start and export seconds longer.

    Example:
    >>> BilinearUpsample2x()(keras.ops.ones((1, 3, 5, 2))).shape
    (1, 6, 10, 2)
    """

    def call(self, inputs):
        # tf.image.resize, not keras.ops.image.resize, which checks its size in Python
        # and so refuses the run-time (tensor) size of a free H and W.
        size = 2 * tf.shape(inputs)[1:3]
        return tf.cast(tf.image.resize(inputs, size, method="bilinear"), inputs.dtype)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, c)
