"""Filtered back-projection (scikit-image's iradon), the rotation centre, and the angle splits."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import half_turn, shepp_logan, sinogram_of
from skimage.transform import iradon

from tomogan_tf.tomography import angle_splits, fbp

SIZE, ANGLES = 64, 48


def disc(size: int, radius: float) -> np.ndarray:
    return np.hypot(*(np.mgrid[:size, :size] - size // 2)) < radius


def test_fbp_is_scikit_image_iradon_and_reconstructs_the_phantom():
    phantom, theta = shepp_logan(SIZE), half_turn(ANGLES)
    line = sinogram_of(phantom, theta)
    ours = fbp(line, theta)[0]
    theirs = iradon(line.T, theta=theta, output_size=SIZE, filter_name="ramp", circle=True)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    inside = disc(SIZE, SIZE // 2 - 4)
    error = np.sqrt(np.mean((ours - phantom)[inside] ** 2)) / np.ptp(phantom)
    assert error < 0.08, error
    np.testing.assert_allclose(fbp(line, theta, pixel_mm=0.5)[0], ours / 0.5, rtol=1e-6)


def test_an_offset_rotation_axis_is_corrected_by_the_centre():
    phantom, theta = shepp_logan(SIZE), half_turn(ANGLES)
    line = sinogram_of(phantom, theta)  # axis at column 32 of 64
    margin, offset = 8, 3
    centred = np.pad(line, ((0, 0), (margin, margin)))  # axis at 40 of 80, the middle
    shifted = np.pad(line, ((0, 0), (margin + offset, margin - offset)))  # axis at 43
    reference = fbp(centred, theta)[0]
    right = fbp(shifted, theta, centre=40 + offset)[0]
    wrong = fbp(shifted, theta)[0]
    np.testing.assert_allclose(right, reference, rtol=0, atol=1e-6)
    assert np.abs(wrong - reference).max() > 0.1 * np.ptp(phantom)


def test_sinograms_that_do_not_match_the_angles_are_refused():
    with pytest.raises(ValueError, match="do not match 10 angles"):
        fbp(np.zeros((2, 12, 16), np.float32), half_turn(10))


@pytest.mark.parametrize("count, splits", [(48, 4), (50, 4), (9, 2)])
def test_splits_are_disjoint_interleaved_and_cover_every_angle(count, splits):
    subsets = angle_splits(count, splits)
    joined = np.concatenate(subsets)
    assert len(subsets) == splits
    assert sorted(joined.tolist()) == list(range(count))  # every angle, each once
    for k, subset in enumerate(subsets):
        assert (subset % splits == k).all()  # interleaved: each spans the half-turn
    with pytest.raises(ValueError):
        angle_splits(3, 4)
