"""Self-supervised modes and Data Exchange files through the command-line tools."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from conftest import run_module
from helpers import write_noisy_pairs

from data_tools.make_projection_dataset import make_projection_dataset
from tomogan_tf import Denoiser
from tomogan_tf.data.dxchange import DARKS, DATA, FLATS, THETA
from tomogan_tf.data.sources import open_dxchange
from tomogan_tf.serving import export_savedmodel
from tomogan_tf.utils.files import cast_output

TINY = ["--psz", "16", "--mbsz", "2", "--val_slices", "2", "--vgg_weights", "none"]
SHORT = ["--maxiter", "6", "--val_every", "3", *TINY]


def check_ok(result) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> str:
    return write_noisy_pairs(str(tmp_path_factory.mktemp("pairs") / "pairs.h5"), size=40)


@pytest.fixture(scope="module")
def projections(tmp_path_factory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("dx")
    first, second = str(folder / "scan.h5"), str(folder / "repeat.h5")
    make_projection_dataset(first, second, n_angles=20, rows=24, size=32, flats=3, darks=1)
    return first, second


def test_n2s_trains_and_denoises_directly_or_j_invariantly(pairs, tmp_path):
    logdir = str(tmp_path / "n2s")
    stdout = check_ok(
        run_module("tomogan_tf.train", "--h5", pairs, "--logdir", logdir, "--mode", "n2s", *SHORT)
    )
    assert "at hidden pixels against the noisy images (no clean image was read" in stdout
    with h5py.File(pairs) as f:
        noisy = f["test_ns"][:]
    outputs = {}
    for inference in ("direct", "jinv"):
        out = str(tmp_path / f"{inference}.npy")
        args = ["--model", logdir, "--input", pairs, "--output", out, "--inference", inference]
        check_ok(run_module("tomogan_tf.denoise", *args))
        outputs[inference] = np.load(out)
        expected = Denoiser.load(logdir, inference=inference)(noisy)
        np.testing.assert_allclose(outputs[inference], expected, rtol=1e-5, atol=1e-6)
    assert outputs["jinv"].shape == noisy.shape
    assert np.abs(outputs["jinv"] - outputs["direct"]).max() > 1e-4
    # Held-out figures against the clean stack, which training never read.
    stdout = check_ok(run_module("tomogan_tf.evaluate", "--model", logdir, "--h5", pairs))
    assert "PSNR" in stdout


def test_n2n_trains_on_a_second_measurement_in_the_same_file(pairs, tmp_path):
    logdir = str(tmp_path / "n2n")
    stdout = check_ok(
        run_module("tomogan_tf.train", "--h5", pairs, "--logdir", logdir, "--mode", "n2n", *SHORT)
    )
    assert "against the second noisy measurement (no clean image was read)" in stdout


def test_data_exchange_n2s_run_denoises_back_into_data_exchange(projections, tmp_path):
    scan, _ = projections
    logdir = str(tmp_path / "dx")
    args = ["--h5", scan, "--logdir", logdir, "--layout", "dxchange", "--mode", "n2s"]
    check_ok(run_module("tomogan_tf.train", *args, "--minus_log", *SHORT))
    out = str(tmp_path / "scan_dn.h5")
    stdout = check_ok(
        run_module("tomogan_tf.denoise", "--model", logdir, "--input", scan, "--output", out)
    )
    assert f"-> {out}:{DATA} (uint16)" in stdout
    with h5py.File(scan) as f, h5py.File(out) as g:
        assert g[DATA].shape == f[DATA].shape and g[DATA].dtype == f[DATA].dtype
        for key in (FLATS, DARKS, THETA, "reference/transmission"):
            np.testing.assert_array_equal(g[key][:], f[key][:])
        assert dict(g.attrs) == dict(f.attrs)
        written = g[DATA][:].astype(np.int64)
    # The model saw the projections flat/dark corrected, in line integrals, and its
    # output went back to counts through the inverse of that correction.
    with open_dxchange(scan, minus_log=True) as source:
        denoised = Denoiser.load(logdir)(source.read(list(range(source.shape[0]))))
        expected = cast_output(source.correction.invert(denoised), np.dtype("uint16"))
    assert np.abs(written - expected).max() <= 1
    stdout = check_ok(run_module("tomogan_tf.evaluate", "--model", logdir, "--h5", scan))
    assert "20 slices of" in stdout and "PSNR" in stdout
    # The export records the layout, so a client knows to send corrected projections.
    exported = export_savedmodel(logdir, str(tmp_path / "serving"), version=1)
    assert Denoiser.load(exported).trained["layout"] == "dxchange"


def test_data_exchange_n2n_trains_on_two_scans(projections, tmp_path):
    scan, repeat = projections
    args = ["--h5", scan, "--target_h5", repeat, "--layout", "dxchange", "--mode", "n2n"]
    stdout = check_ok(
        run_module("tomogan_tf.train", *args, "--logdir", str(tmp_path / "r"), *SHORT)
    )
    assert "second noisy measurement" in stdout


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda f: f.move(DATA, "exchange/projections"), "not a Data Exchange file"),
        (lambda f: f.__delitem__(FLATS) or f.create_dataset(FLATS, data=np.ones((2, 24, 31))),
         "flat fields 'exchange/data_white' are 24x31 pixels"),
    ],
)  # fmt: skip
def test_malformed_data_exchange_file_exits_2_with_one_line(projections, tmp_path, damage, problem):
    path = str(tmp_path / "bad.h5")
    with h5py.File(projections[0]) as f, h5py.File(path, "w") as g:
        for key in f:
            f.copy(key, g)
        damage(g)
    args = ["--h5", path, "--logdir", str(tmp_path / "r"), "--layout", "dxchange", "--mode", "n2s"]
    result = run_module("tomogan_tf.train", *args, *TINY)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"tomogan_tf.train: error: {path}: "), lines
    assert problem in lines[0]
