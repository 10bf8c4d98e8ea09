"""Small layers shared by the model families, serialisable in `.keras` files."""

from __future__ import annotations

import keras
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
