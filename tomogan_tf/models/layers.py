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


@keras.saving.register_keras_serializable(package="tomogan_tf")
class BilinearUpsample2x(keras.layers.Layer):
    """Bilinear x2 upsampling (half-pixel centres, edges clamped) for any input size.

    The same values as ``UpSampling2D(2, interpolation="bilinear")``, written as the
    fixed 0.25/0.75 stencil it amounts to, because Keras' resize needs static
    sizes and so cannot serve a SavedModel with free H and W.

    Example:
    >>> BilinearUpsample2x()(keras.ops.ones((1, 3, 5, 2))).shape
    (1, 6, 10, 2)
    """

    @staticmethod
    def _upsample_axis(x, axis: int):
        first = ops.take(x, ops.convert_to_tensor([0]), axis=axis)
        last = ops.take(x, ops.convert_to_tensor([-1]), axis=axis)
        n = ops.shape(x)[axis]
        previous = ops.concatenate([first, ops.take(x, ops.arange(0, n - 1), axis=axis)], axis)
        following = ops.concatenate([ops.take(x, ops.arange(1, n), axis=axis), last], axis)
        even = 0.75 * x + 0.25 * previous
        odd = 0.75 * x + 0.25 * following
        interleaved = ops.stack([even, odd], axis=axis + 1)
        shape = ops.shape(x)
        new_shape = [shape[i] for i in range(4)]
        new_shape[axis] = 2 * shape[axis]
        return ops.reshape(interleaved, new_shape)

    def call(self, inputs):
        return self._upsample_axis(self._upsample_axis(inputs, 1), 2)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, c)
