"""Fixtures of the loss tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest


@pytest.fixture
def generator_gradient_norm() -> Callable:
    """``norm(loss_of_output, inputs)``: global norm of d loss / d generator weights.

    The generator is TomoGAN's with fixed initial weights (seed 1); every one of its
    trainable variables must get a finite gradient (see `harness.gradient_norm`).
    """
    # Imported here, not at the top: pytest-xdist's controller loads every conftest.py
    # before it starts the workers, and importing TensorFlow there costs seconds per run.
    import keras
    from harness import gradient_norm

    from tomogan_tf.models.tomogan import tomogan_generator

    def norm(loss_of_output: Callable, inputs) -> float:
        keras.utils.set_random_seed(1)
        return gradient_norm(tomogan_generator(), loss_of_output, inputs)

    return norm
