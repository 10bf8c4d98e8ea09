"""tests/harness.py itself: each of its checks catches the fault it is there for.

Tiny throw-away layers and models, each broken in one way; the harness must reject
every one of them (and pass the sound ones, which the package tests already show).
"""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from harness import (
    gradient_norm,
    random_array,
    run_free_shape_test,
    run_layer_test,
    run_model_saving_test,
    run_model_test,
    run_serialization_test,
)

pytestmark = pytest.mark.unit

X = random_array(1, 4, 6, 2)


@keras.saving.register_keras_serializable(package="tomogan_tf_tests")
class Scale(keras.layers.Layer):
    """Multiply by a constant: sound when its config carries ``factor``."""

    def __init__(self, factor: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, inputs):
        return inputs * self.factor

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="tomogan_tf_tests")
class ForgetfulScale(Scale):
    """Its config leaves out ``factor``: a revived copy computes something else."""

    def get_config(self):
        config = super().get_config()
        del config["factor"]
        return config


@keras.saving.register_keras_serializable(package="tomogan_tf_tests")
class NoKwargs(keras.layers.Layer):
    """Its constructor takes no ``**kwargs``: ``name=`` or ``dtype=`` cannot be passed on."""

    def __init__(self):
        super().__init__()

    def call(self, inputs):
        return inputs


class Unregistered(Scale):
    """Sound, but not registered with Keras."""


@keras.saving.register_keras_serializable(package="tomogan_tf_tests")
class WrongShape(Scale):
    """``compute_output_shape`` claims one channel."""

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 1)


@keras.saving.register_keras_serializable(package="tomogan_tf_tests")
class StaticReshape(Scale):
    """Reshapes with the static H and W, which a graph with free sizes does not have."""

    def call(self, inputs):
        return tf.reshape(inputs, [-1, inputs.shape[1] * inputs.shape[2], inputs.shape[-1]])

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if None in (h, w) else h * w, c)


@keras.saving.register_keras_serializable(package="tomogan_tf_tests")
class Blocked(Scale):
    """Lets no gradient through."""

    def call(self, inputs):
        return tf.stop_gradient(inputs) * self.factor


def test_a_sound_layer_passes_and_values_are_checked():
    layer = run_layer_test(Scale, {"factor": 3.0}, X, X.shape, expected_output=3 * X)
    assert layer.factor == 3.0
    with pytest.raises(AssertionError, match="expected output"):
        run_layer_test(Scale, {"factor": 3.0}, X, X.shape, expected_output=2 * X)
    with pytest.raises(AssertionError, match="output shapes"):
        run_layer_test(Scale, {}, X, (1, 4, 6, 1))
    with pytest.raises(AssertionError):
        run_layer_test(Scale, {}, X, X.shape, expected_num_trainable_weights=1)


@pytest.mark.parametrize(
    "cls, error, message",
    [
        (ForgetfulScale, AssertionError, r"leaves out \['factor'\]"),
        (NoKwargs, TypeError, "unexpected keyword argument"),
        (Unregistered, AssertionError, "not registered"),
        (WrongShape, AssertionError, "compute_output_spec"),
        (StaticReshape, TypeError, "NoneType"),
        (Blocked, AssertionError, "no gradient for"),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) and issubclass(v, keras.layers.Layer) else "",
)
def test_a_broken_layer_is_caught(cls, error, message):
    init = {} if cls is NoKwargs else {"name": "broken", "factor": 3.0}
    expected = (1, 24, 2) if cls is StaticReshape else X.shape
    with pytest.raises(error, match=message):
        run_layer_test(cls, init, X, expected)


def test_serialization_of_a_forgetful_layer_fails():
    with pytest.raises(AssertionError, match=r"leaves out \['factor'\]"):
        run_serialization_test(ForgetfulScale(factor=3.0))
    with pytest.raises(AssertionError, match="not registered"):
        run_serialization_test(Unregistered())


def tiny_model(layer: keras.layers.Layer | None = None) -> keras.Model:
    inputs = keras.Input((None, None, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    if layer is not None:
        x = layer(x)
    return keras.Model(inputs, x, name="tiny")


def test_model_checks_pass_a_sound_model_and_catch_wrong_shapes_and_ranges():
    m = tiny_model(Scale(0.5))
    run_model_test(m, X, (1, 4, 6, 3), run_free_shape_check=True)
    run_model_saving_test(m, X)
    with pytest.raises(AssertionError, match="output shapes"):
        run_model_test(m, X, (1, 4, 6, 1))
    with pytest.raises(AssertionError, match="leaves"):
        run_model_test(m, X, (1, 4, 6, 3), value_range=(0.0, 1e-6))
    with pytest.raises(AssertionError, match="is float32"):
        run_model_test(m, X, (1, 4, 6, 3), expected_dtype="float16")


def test_saving_catches_state_outside_config_and_weights():
    # The factor is left out of the config: the loaded model multiplies by 2, not 0.5.
    with pytest.raises(AssertionError):
        run_model_saving_test(tiny_model(ForgetfulScale(0.5)), X)


def test_free_shapes_catch_a_layer_that_needs_static_sizes():
    with pytest.raises(TypeError):
        run_free_shape_test(tiny_model(StaticReshape()), X)


def test_gradient_norm_needs_a_gradient_for_every_weight():
    m = tiny_model()
    assert gradient_norm(m, lambda out: tf.reduce_mean(out**2), X) > 0
    with pytest.raises(AssertionError, match="no gradient"):
        gradient_norm(tiny_model(Blocked()), lambda out: tf.reduce_mean(out**2), X)


def test_random_array_is_seeded():
    np.testing.assert_array_equal(random_array(2, 3), random_array(2, 3))
    assert not np.array_equal(random_array(2, 3), random_array(2, 3, seed=1))
