"""tomogan_tf.models.layers: the small layers the model families share."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from harness import random_array, run_layer_test

from tomogan_tf.models.layers import BilinearUpsample2x, CentreSlice


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_centre_slice_picks_the_centre_channel(depth):
    x = random_array(2, 5, 7, depth)
    run_layer_test(
        CentreSlice,
        {"name": "centre"},
        x,
        expected_output_shape=(2, 5, 7, 1),
        expected_output=x[..., depth // 2 : depth // 2 + 1],
        atol=0.0,
    )


@pytest.mark.parametrize("shape", [(2, 5, 7, 3), (1, 1, 4, 1)], ids=["odd-sizes", "one-row"])
def test_bilinear_upsample_is_keras_bilinear_upsampling(shape):
    # Same values as UpSampling2D's bilinear resize, but for sizes unknown until run time
    # (run_layer_test traces it with free H and W, which that resize cannot do).
    x = random_array(*shape)
    b, h, w, c = shape
    run_layer_test(
        BilinearUpsample2x,
        {"name": "up"},
        x,
        expected_output_shape=(b, 2 * h, 2 * w, c),
        expected_output=keras.layers.UpSampling2D(2, interpolation="bilinear")(x),
    )


def test_bilinear_upsample_stencil_by_hand():
    # Half-pixel centres: new pixels sit a quarter of the way to the neighbours; edges clamp.
    row = np.array([0.0, 4.0, 8.0], "float32").reshape(1, 1, 3, 1)
    out = BilinearUpsample2x()(row).numpy()
    np.testing.assert_allclose(out[0, 0, :, 0], [0, 1, 3, 5, 7, 8])
    np.testing.assert_allclose(out[0, 1, :, 0], out[0, 0, :, 0])
