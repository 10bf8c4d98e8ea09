"""A family other than the default trained, denoised and exported by the tools, as a user would.

Every family trains through the same `train` (tests/training/test_families.py runs
ADL and 3-D ADL in process); here ImageDenoisingGAN, the cheapest to train, goes
through the whole chain a user runs: ``python -m tomogan_tf.train --model idgan``,
the file tool, the Keras model and the SavedModel. tests/inference/test_denoiser_3d.py
checks each family's run directory through the denoiser, the file tool (adl3d) and
the export (adl, idgan, adl3d) against the network itself.
"""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
from conftest import run_module, write_pair_file

from tomogan_tf import Denoiser
from tomogan_tf.serving import export_savedmodel
from tomogan_tf.training.run_dir import RunDir

# A short run on CPU: the critic joins after a few generator-only iterations.
SCHEDULE = ["--g_warmup", "4", "--d_warmup", "2", "--d_every", "2", "--vgg_weights", "none"]
RUN = ["--psz", "32", "--mbsz", "4", "--maxiter", "30", "--val_every", "10"]


@pytest.fixture(scope="module")
def data_file(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("data") / "pairs.h5")
    return write_pair_file(path, n_train=16, n_test=16, size=(48, 48), sigma=0.1)


def validation_psnrs(stdout: str) -> list[float]:
    return [float(v) for v in re.findall(r"val_psnr: ([0-9.]+)", stdout)]


def test_idgan_trains_denoises_and_exports(data_file, tmp_path):
    logdir = str(tmp_path / "idgan")
    args = ["--h5", data_file, "--logdir", logdir, "--model", "idgan", "--val_slices", "4"]
    result = run_module("tomogan_tf.train", *args, *RUN, *SCHEDULE)
    assert result.returncode == 0, result.stderr[-3000:]
    psnrs = validation_psnrs(result.stdout)
    assert len(psnrs) == 3, result.stdout
    # Training lowers the validation error (BN's moving averages, which validation
    # uses, lag far behind in runs this short, so the gain is small but steady).
    assert psnrs[-1] > psnrs[0] + 0.05, psnrs
    config = RunDir(logdir).load_config()
    assert config.model.family == "idgan" and config.schedule.d_every == 2

    # The run denoises through the file tool...
    out = str(tmp_path / "denoised.h5")
    result = run_module(
        "tomogan_tf.denoise", "--model", logdir, "--input", data_file, "--input_key", "test_ns",
        "--output", out,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    with h5py.File(data_file) as f, h5py.File(out) as g:
        noisy, clean = f["test_ns"][:], f["test_gt"][:]
        denoised = g[next(iter(g))][:]
    assert denoised.shape == noisy.shape and np.isfinite(denoised).all()

    # ...matches the Keras model loaded in Python, and survives export.
    keras_out = Denoiser.load(logdir)(noisy)
    np.testing.assert_allclose(denoised, keras_out, atol=1e-4 * np.ptp(clean))
    exported = export_savedmodel(logdir, str(tmp_path / "serving"), version=1)
    served = Denoiser.load(exported)(noisy)
    np.testing.assert_allclose(served, keras_out, atol=1e-4 * np.ptp(clean))
