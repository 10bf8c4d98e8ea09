"""tomogan_tf.data.masking: Noise2Self masks; J-invariance of the masked input and predictions.

The masked loss (J-invariance of the loss) is tested with it, in
tests/losses/test_reconstruction.py.
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tomogan_tf.data.masking import (
    apply_blind_spots,
    apply_grid_mask,
    apply_mask,
    grid_mask,
    grid_phases,
    jinvariant_predict,
)
from tomogan_tf.models.tomogan import tomogan_generator

RNG = np.random.default_rng(0)


def perturb_hidden(x: np.ndarray, mask: np.ndarray, amount: float = 5.0) -> np.ndarray:
    """``x`` with the hidden pixels of its centre channel changed."""
    out = x.copy()
    centre = x.shape[-1] // 2
    out[..., centre][mask[..., 0] > 0] += amount
    return out


def masks_of(kind: str, x: np.ndarray, step: int):
    masked, mask = apply_mask(x, kind, step, seed=7)
    return masked.numpy(), mask.numpy()


def test_grid_phases_hide_every_pixel_exactly_once():
    for spatial in [(5, 7), (6, 5, 9)]:
        phases = grid_phases(len(spatial))
        total = sum(grid_mask(spatial, p).numpy() for p in range(phases))
        np.testing.assert_array_equal(total, 1.0)
    assert grid_phases(2) == 16 and grid_phases(3) == 64
    # Phase 6 in 2-D: rows 1, 5, ..., columns 2, 6, ...
    ys, xs = np.nonzero(grid_mask((8, 8), 6).numpy())
    assert set(ys) == {1, 5} and set(xs) == {2, 6}


@pytest.mark.parametrize(
    "kind, shape",
    [
        ("grid", (2, 19, 23, 3)),
        ("grid", (1, 9, 10, 11, 1)),
        ("random", (2, 19, 23, 3)),
        ("random", (1, 9, 10, 11, 1)),
    ],
)
def test_masked_input_carries_nothing_of_the_hidden_pixels(kind, shape):
    x = RNG.random(shape).astype("float32")
    for step in range(3):
        masked, mask = masks_of(kind, x, step)
        assert mask.sum() > 0
        again, same_mask = masks_of(kind, perturb_hidden(x, mask), step)
        np.testing.assert_array_equal(same_mask, mask)
        np.testing.assert_array_equal(again, masked)
        # Everything not hidden is passed through unchanged, other channels included.
        centre = shape[-1] // 2
        keep = np.broadcast_to(mask == 0, masked[..., centre : centre + 1].shape)
        np.testing.assert_array_equal(
            masked[..., centre : centre + 1][keep], x[..., centre : centre + 1][keep]
        )
        others = [c for c in range(shape[-1]) if c != centre]
        np.testing.assert_array_equal(masked[..., others], x[..., others])


def test_grid_fills():
    x = RNG.random((1, 8, 8, 1)).astype("float32")
    zero, mask = apply_grid_mask(x, 5, fill="zero")
    assert np.all(zero.numpy()[mask.numpy() > 0] == 0)
    mean, _ = apply_grid_mask(x, 5, fill="mean")
    # Pixel (1, 1) is hidden; its 8 neighbours' mean replaces it.
    expected = (x[0, 0:3, 0:3, 0].sum() - x[0, 1, 1, 0]) / 8
    assert mean.numpy()[0, 1, 1, 0] == pytest.approx(expected, rel=1e-6)


def test_blind_spots_are_sparse_far_apart_and_replaced_by_a_near_neighbour():
    x = RNG.random((4, 64, 48, 1)).astype("float32")
    masked, mask = apply_blind_spots(x, tf.constant([3, 9], tf.int64))
    masked, mask = masked.numpy()[..., 0], mask.numpy()[..., 0]
    # One spot per 8x8 cell: about 1/64 of the pixels.
    assert 0.01 < mask.mean() < 0.022
    for b in range(4):
        points = np.argwhere(mask[b])
        gaps = np.abs(points[:, None] - points[None]).max(-1)
        np.fill_diagonal(gaps, 99)
        assert gaps.min() >= 5  # 2 * radius + 1
        for y, xx in points:
            window = x[b, max(0, y - 2) : y + 3, max(0, xx - 2) : xx + 3, 0]
            assert masked[b, y, xx] in window and masked[b, y, xx] != x[b, y, xx]
    # Every phase of an 8-pixel pooling grid gets spots, over a few draws.
    phases = set()
    for step in range(6):
        _, m = apply_blind_spots(x, tf.constant([3, step], tf.int64))
        phases |= {(y % 8, xx % 8) for _, y, xx in np.argwhere(m.numpy()[..., 0])}
    assert len(phases) == 64


@pytest.mark.parametrize("kind", ["grid", "random"])
def test_network_predictions_at_hidden_pixels_ignore_their_values(kind):
    generator = tomogan_generator(depth=3)
    x = RNG.random((1, 32, 32, 3)).astype("float32")
    masked, mask = masks_of(kind, x, 2)
    moved, _ = masks_of(kind, perturb_hidden(x, mask), 2)
    before = generator(masked).numpy()
    after = generator(moved).numpy()
    np.testing.assert_array_equal(after[mask > 0], before[mask > 0])
    # Perturbing a visible pixel does move the predictions (the test can fail).
    visible = x.copy()
    visible[0, 16, 16, 1] += 5.0 if mask[0, 16, 16, 0] == 0 else 0.0
    visible[0, 17, 16, 1] += 5.0 if mask[0, 17, 16, 0] == 0 else 0.0
    changed, _ = masks_of(kind, visible, 2)
    assert np.abs(generator(changed).numpy() - before).max() > 0


def test_jinvariant_prediction_predicts_each_pixel_with_itself_hidden():
    generator = tomogan_generator()
    x = RNG.random((1, 16, 16, 1)).astype("float32")
    out = jinvariant_predict(lambda a: generator(a).numpy(), x)
    assert out.shape == (1, 16, 16, 1)
    # Changing one pixel changes the J-invariant output everywhere but at that pixel.
    moved = x.copy()
    moved[0, 5, 9, 0] += 3.0
    delta = np.abs(jinvariant_predict(lambda a: generator(a).numpy(), moved) - out)
    assert delta[0, 5, 9, 0] == 0.0
    assert delta.max() > 0
    # Each output pixel comes from the pass that hid it.
    masked, mask = apply_grid_mask(x, 5)
    direct = generator(masked).numpy()
    np.testing.assert_allclose(out[mask.numpy() > 0], direct[mask.numpy() > 0], rtol=1e-6)
