"""tomogan_tf.losses.reconstruction: multi-scale and masked reconstruction losses."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from helpers import checkerboard

from tomogan_tf.data.masking import apply_grid_mask
from tomogan_tf.losses import downscale_targets, masked_reconstruction_loss, reconstruction_loss

RNG = np.random.default_rng(0)
IMAGE = RNG.random((2, 16, 16, 1)).astype("float32")
_ = RNG.random((2, 16, 16, 1))  # (OTHER in test_adl.py: the same VOLUME)
VOLUME = RNG.random((1, 16, 16, 16, 1)).astype("float32")


def numpy_pool(x: np.ndarray, f: int) -> np.ndarray:
    spatial = x.shape[1:-1]
    split = [x.shape[0]] + [v for n in spatial for v in (n // f, f)] + [x.shape[-1]]
    return x.reshape(split).mean(axis=tuple(range(2, 2 * len(spatial) + 1, 2)))


@pytest.mark.parametrize("y", [IMAGE, VOLUME], ids=["2d", "3d"])
def test_reconstruction_loss_multiscale(y):
    # The targets are y pooled along every spatial axis (3-D: depth too).
    outputs = [np.asarray(t) for t in downscale_targets(y)]
    for output, f in zip(outputs, (1, 2, 4), strict=True):
        np.testing.assert_allclose(output, numpy_pool(y, f) if f > 1 else y, atol=1e-6)
    adl = {"l1": 1.0, "pyramid": 1.0, "histogram": 1.0}
    total, terms = reconstruction_loss(y, outputs, adl)
    assert float(total) == 0.0 and set(terms) == {"l1", "pyramid", "histogram"}

    # Each scale counts; total is the weighted sum of the logged terms.
    quarter = outputs[2] + 0.05 * checkerboard(outputs[2].shape)
    weights = {"l1": 1.0, "pyramid": 2.0, "histogram": 3.0}
    total, terms = reconstruction_loss(y, [*outputs[:2], quarter], weights)
    assert float(terms["l1"]) == pytest.approx(0.05, rel=1e-4)
    assert float(terms["pyramid"]) > 0 and float(terms["histogram"]) > 0
    expected = float(terms["l1"]) + 2 * float(terms["pyramid"]) + 3 * float(terms["histogram"])
    assert float(total) == pytest.approx(expected, rel=1e-5)

    with pytest.raises(ValueError, match="pooled by 2"):
        reconstruction_loss(y, [outputs[0], outputs[0], outputs[2]], adl)


def test_masked_loss_reads_only_hidden_pixels():
    target = tf.constant(RNG.random((2, 16, 16, 1)).astype("float32"))
    pred = tf.Variable(RNG.random((2, 16, 16, 1)).astype("float32"))
    _, mask = apply_grid_mask(target, 3)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(target)
        total, terms = masked_reconstruction_loss(target, pred, mask, {"mse": 1.0, "l1": 0.5})
    assert sorted(terms) == ["l1", "mse"]
    hidden = mask.numpy() > 0
    diff = pred.numpy() - target.numpy()
    assert float(terms["mse"]) == pytest.approx(np.mean(diff[hidden] ** 2), rel=1e-5)
    assert float(total) == pytest.approx(
        np.mean(diff[hidden] ** 2) + 0.5 * np.mean(np.abs(diff[hidden])), rel=1e-5
    )
    for wrt in (pred, target):
        grad = tape.gradient(total, wrt).numpy()
        assert np.all(grad[~hidden] == 0) and np.all(grad[hidden] != 0)
    # Changing visible target pixels leaves the loss as it was.
    other = np.where(hidden, target.numpy(), target.numpy() + 1.0)
    same, _ = masked_reconstruction_loss(other, pred, mask, {"mse": 1.0, "l1": 0.5})
    assert float(same) == pytest.approx(float(total), rel=1e-6)
    with pytest.raises(ValueError, match="pyramid"):
        masked_reconstruction_loss(target, pred, mask, {"pyramid": 1.0})
