"""Noise2Inverse as a user runs it: reconstruct, train --mode n2i, denoise and evaluate."""

from __future__ import annotations

import h5py
import numpy as np
from helpers import run_module, shepp_logan, write_projection_scan

from tomogan_tf.inference import Denoiser


def test_from_a_scan_to_denoised_slices_by_the_methods_rule(tmp_path):
    scan = write_projection_scan(tmp_path / "scan.h5", shepp_logan(32), angles=24, rows=6)
    recon, run = tmp_path / "recon.h5", tmp_path / "run"
    done = run_module("tomogan_tf.reconstruct", "--input", scan, "--output", str(recon),
                      "--splits", "2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    trained = run_module("tomogan_tf.train", "--h5", str(recon), "--mode", "n2i", "--splits",
                         "2", "--logdir", str(run), "--psz", "16", "--mbsz", "2", "--maxiter",
                         "3", "--val_every", "3", "--vgg_weights", "none")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert "scored against the held-out one" in trained.stdout

    out = tmp_path / "denoised.h5"
    denoised = run_module("tomogan_tf.denoise", "--model", str(run), "--input", str(recon),
                          "--output", str(out), "--inference", "n2i")  # fmt: skip
    assert denoised.returncode == 0, denoised.stderr
    assert "denoised 6 slices of 32x32" in denoised.stdout
    with h5py.File(recon, "r") as f:
        splits = [f["split_0"][...], f["split_1"][...]]
    with h5py.File(out, "r") as f:
        result = f["denoised"][...]
    model = Denoiser.load(str(run), precision="float32")
    # K = 2: each held-out mean is the other split; the rule averages the two outputs.
    expected = (model(splits[1]) + model(splits[0])) / 2
    np.testing.assert_allclose(result, expected, atol=1e-6)

    exported = run_module("tomogan_tf.export", "--model", str(run), "--out", str(tmp_path / "sm"))
    assert exported.returncode == 0, exported.stderr
    served = Denoiser.load(str(tmp_path / "sm" / "1"), inference="n2i")
    assert served.trained["splits"] == 2  # the rule travels with the SavedModel
    np.testing.assert_allclose(served.denoise_splits(splits), result, atol=1e-5)

    with h5py.File(recon, "a") as f:  # a clean reference, for evaluate only
        f["clean"] = f["recon"][...]
    scored = run_module("tomogan_tf.evaluate", "--model", str(run), "--h5", str(recon),
                        "--clean_key", "clean", "--inference", "n2i")  # fmt: skip
    assert scored.returncode == 0, scored.stderr
    assert "6 slices of" in scored.stdout and "dB denoised" in scored.stdout

    # Bad input: one line naming the file and the problem, exit 2, nothing written.
    bare = tmp_path / "bare.h5"
    with h5py.File(bare, "w") as f:
        f["recon"] = splits[0]
    refused = run_module("tomogan_tf.denoise", "--model", str(run), "--input", str(bare),
                         "--output", str(tmp_path / "x.h5"), "--inference", "n2i")  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        f"tomogan_tf.denoise: error: {bare}: Noise2Inverse needs 2 sub-reconstructions named"
        " 'split_{k}'; the file holds none (python -m tomogan_tf.reconstruct --splits K"
        " writes them)"
    ]
    assert not (tmp_path / "x.h5").exists()
    supervised = run_module("tomogan_tf.denoise", "--input", str(recon), "--input_key", "recon",
                            "--output", str(tmp_path / "y.h5"), "--inference", "n2i")  # fmt: skip
    assert supervised.returncode == 2
    assert "--inference n2i is for models trained with --mode n2i" in supervised.stderr
    assert not (tmp_path / "y.h5").exists()
