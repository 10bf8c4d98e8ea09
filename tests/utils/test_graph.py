"""Grappler by device, and the environment variable that overrides the choice."""

from __future__ import annotations

import pytest
import tensorflow as tf

from tomogan_tf.utils.graph import ENVIRONMENT, tune_graph_optimizer


@pytest.fixture
def restore_grappler():
    before = tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)
    yield
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": before})


def disabled() -> bool:
    return tf.config.optimizer.get_experimental_options().get("disable_meta_optimizer", False)


def test_grappler_is_off_without_a_gpu_and_the_variable_overrides_it(monkeypatch, restore_grappler):
    has_gpu = bool(tf.config.list_physical_devices("GPU"))
    monkeypatch.delenv(ENVIRONMENT, raising=False)
    assert tune_graph_optimizer() is has_gpu and disabled() is not has_gpu
    monkeypatch.setenv(ENVIRONMENT, "1")
    assert tune_graph_optimizer() is True and not disabled()
    monkeypatch.setenv(ENVIRONMENT, "0")
    assert tune_graph_optimizer() is False and disabled()
