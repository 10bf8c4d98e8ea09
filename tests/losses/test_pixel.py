"""tomogan_tf.losses.pixel: pixel-wise fidelity losses."""

from __future__ import annotations

import numpy as np

from tomogan_tf.losses import mean_absolute_error, mean_squared_error

RNG = np.random.default_rng(0)
NOISY = RNG.random((2, 32, 32, 1)).astype("float32")
CLEAN = RNG.random((2, 32, 32, 1)).astype("float32")


def test_mse_value_and_zero_for_identical():
    assert float(mean_squared_error(CLEAN, CLEAN)) == 0.0
    expected = np.mean((CLEAN - NOISY) ** 2)
    np.testing.assert_allclose(float(mean_squared_error(CLEAN, NOISY)), expected, rtol=1e-6)


def test_mae_value_and_zero_for_identical():
    assert float(mean_absolute_error(CLEAN, CLEAN)) == 0.0
    expected = np.mean(np.abs(CLEAN - NOISY))
    np.testing.assert_allclose(float(mean_absolute_error(CLEAN, NOISY)), expected, rtol=1e-6)


def test_mse_gradient_reaches_generator(generator_gradient_norm):
    assert generator_gradient_norm(lambda out: mean_squared_error(CLEAN, out), NOISY) > 0
