"""python -m tomogan_tf.reconstruct, as a user runs it."""

from __future__ import annotations

import h5py
import numpy as np
from helpers import PHANTOM_SIZE, half_turn, run_module, shepp_logan, write_projection_scan


def test_reconstructs_a_scan_and_reports_bad_input_in_one_line(tmp_path):
    path = write_projection_scan(tmp_path / "scan.h5", shepp_logan(), angles=48)
    out = tmp_path / "recon.h5"
    done = run_module("tomogan_tf.reconstruct", "--input", path, "--output", str(out),
                      "--splits", "2", "--angles", "0:48:2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "recon, split_0, split_1" in done.stdout and "from 24 angles" in done.stdout
    assert "reconstructed slices 3/3" in done.stderr
    with h5py.File(out, "r") as f:
        np.testing.assert_allclose(f["geometry/theta"][...], half_turn(48)[::2])
        assert f["recon"].attrs["units"] == "1/pixel"
    before = out.stat().st_mtime_ns
    refused = run_module("tomogan_tf.reconstruct", "--input", path, "--output", str(out),
                         "--overwrite", "--splits", "2", "--centre", "-1")  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"tomogan_tf.reconstruct: error: {path}: rotation centre -1.0 is outside the detector"
        f" (columns 0 to {PHANTOM_SIZE - 1})"
    ]
    assert out.stat().st_mtime_ns == before  # the earlier output is untouched
    exists = run_module("tomogan_tf.reconstruct", "--input", path, "--output", str(out))
    assert exists.returncode == 2 and "pass --overwrite" in exists.stderr
