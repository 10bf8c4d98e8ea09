"""reconstruct(): the full and split reconstructions streamed into one HDF5 file."""

from __future__ import annotations

import h5py
import numpy as np
from helpers import half_turn, shepp_logan, sinogram_of, write_projection_scan

from tomogan_tf.tomography import FULL, ProjectionScan, fbp, reconstruct, split_key

SIZE, ANGLES = 64, 48


def test_reconstruct_writes_the_full_and_split_reconstructions(tmp_path):
    phantom, theta = shepp_logan(SIZE), half_turn(ANGLES)
    path = write_projection_scan(tmp_path / "scan.h5", phantom, angles=ANGLES)
    out = str(tmp_path / "recon.h5")
    lines = []
    with ProjectionScan.open(path, splits=4) as scan:
        keys = reconstruct(scan, out, splits=4, pixel_mm=0.25, batch=2, progress=lines.append)
    assert keys == [FULL] + [split_key(k) for k in range(4)]
    assert [line.split(" (")[0] for line in lines] == [
        "reconstructed slices 2/3", "reconstructed slices 3/3"
    ]  # fmt: skip
    expected = fbp(sinogram_of(phantom, theta), theta, pixel_mm=0.25)[0]
    with h5py.File(out, "r") as f:
        full = f[FULL][...]
        assert full.shape == (3, SIZE, SIZE) and full.dtype == np.float32
        np.testing.assert_allclose(full[1], expected, atol=1e-3 * np.abs(expected).max())
        assert f[FULL].attrs["units"] == "1/mm" and f[FULL].attrs["angles"] == ANGLES
        split_of = f["geometry/split"][...]
        parts = []
        for k in range(4):
            subset = np.nonzero(split_of == k)[0]
            assert subset.tolist() == list(range(k, ANGLES, 4))
            alone = fbp(sinogram_of(phantom, theta[subset]), theta[subset], pixel_mm=0.25)[0]
            part = f[split_key(k)][0]
            np.testing.assert_allclose(part, alone, atol=1e-3 * np.abs(alone).max())
            assert f[split_key(k)].attrs["angles"] == ANGLES // 4
            parts.append(part)
        # equal splits of a linear reconstruction: their mean is the full one
        np.testing.assert_allclose(np.mean(parts, axis=0), full[0], atol=1e-5)
