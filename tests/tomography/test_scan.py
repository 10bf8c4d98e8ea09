"""ProjectionScan: sinograms of a Data Exchange file or a sinogram stack, checked up front."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from helpers import half_turn, shepp_logan, sinogram_of, write_projection_scan

from tomogan_tf.errors import InputError
from tomogan_tf.tomography import ProjectionScan


def test_dxchange_projections_become_line_integral_sinograms(tmp_path):
    phantom = shepp_logan(32)
    path = write_projection_scan(tmp_path / "scan.h5", phantom, angles=20, rows=3)
    with ProjectionScan.open(path, views=np.arange(0, 20, 2)) as scan:
        assert (scan.rows, scan.width, scan.angles, scan.centre) == (3, 32, 10, 16)
        sinograms = scan.sinograms(1, 3)
    expected = sinogram_of(phantom, half_turn(20))[::2]
    assert sinograms.shape == (2, 10, 32)
    np.testing.assert_allclose(sinograms[1], expected, atol=1e-4)


def test_a_sinogram_stack_is_read_with_its_angles(tmp_path):
    stack = np.random.default_rng(0).random((4, 6, 8), np.float32)
    path = tmp_path / "sino.h5"
    with h5py.File(path, "w") as f:
        f["sino"], f["angles"] = stack, half_turn(6)
    with ProjectionScan.open(str(path), "sino", "angles", centre=3.5) as scan:
        np.testing.assert_array_equal(scan.sinograms(0, 4), stack)
        np.testing.assert_allclose(scan.theta, half_turn(6))
        assert scan.centre == 3.5


def _scan(tmp_path, **kwargs) -> str:
    return write_projection_scan(tmp_path / "scan.h5", shepp_logan(32), angles=20, **kwargs)


BAD = {
    "missing theta": (dict(theta=None), {}, "no angles: 'exchange/theta' is missing"),
    "too few angles for the splits": ({}, dict(splits=12), "20 angles are too few for 12 splits"),
    "centre outside": ({}, dict(centre=40.0), "rotation centre 40.0 is outside the detector"),
    "angles outside": ({}, dict(views=np.array([3, 25])), "the chosen angles are not within"),
}


@pytest.mark.parametrize("fields, options, problem", BAD.values(), ids=BAD.keys())
def test_bad_scans_are_refused_with_the_problem(tmp_path, fields, options, problem):
    path = _scan(tmp_path, **fields)
    with pytest.raises(InputError) as err:
        ProjectionScan.open(path, **options)
    assert str(err.value).startswith(f"{path}: {problem}")


def test_a_sinogram_stack_without_its_angles_is_refused(tmp_path):
    path = tmp_path / "sino.h5"
    with h5py.File(path, "w") as f:
        f["sino"] = np.zeros((2, 6, 8), np.float32)
    with pytest.raises(InputError, match="no angles: 'theta' is missing beside 'sino'"):
        ProjectionScan.open(str(path), "sino")
