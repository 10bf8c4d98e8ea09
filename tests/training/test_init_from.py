"""Starting a run from a trained model (--init_from): weights, architecture, normalisation."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from helpers import write_noisy_pairs, write_pair_file

from tomogan_tf.errors import InputError
from tomogan_tf.training import TrainConfig, train
from tomogan_tf.training.init_from import follow_source

TINY = dict(psz=16, mbsz=2, val_every=3, log_every=3, val_slices=2, vgg_weights="none", ladv=0)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A short supervised depth-3 residual run with a fixed normalisation window."""
    folder = tmp_path_factory.mktemp("source")
    path = write_pair_file(str(folder / "data.h5"), n_train=6, n_test=3, size=(32, 32))
    run = folder / "run"
    train(TrainConfig.from_settings(h5=path, logdir=str(run), maxiter=6, depth=3, residual=True,
                                    norm="fixed", **TINY), verbose=0)  # fmt: skip
    return path, run


def test_the_first_step_starts_from_the_model(source, tmp_path):
    """With a zero learning rate the adapted run is the source model: same weights, same
    validation score, same normalisation window."""
    path, run = source
    logdir = tmp_path / "adapted"
    config = TrainConfig.from_settings(h5=path, logdir=str(logdir), maxiter=3, lr_g=0.0,
                                       init_from=str(run), **TINY)  # fmt: skip
    metrics = train(config, verbose=0)
    source_model = keras.models.load_model(run / "generator_best.keras", compile=False)
    adapted = keras.models.load_model(logdir / "generator_best.keras", compile=False)
    for ours, theirs in zip(adapted.get_weights(), source_model.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # The source's own best validation was on the same slices of the same file.
    source_metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["psnr"] == pytest.approx(source_metrics["psnr"], abs=1e-4)
    saved = json.loads((logdir / "config.json").read_text())
    source_config = json.loads((run / "config.json").read_text())
    assert (saved["model"]["depth"], saved["model"]["residual"]) == (3, True)
    assert saved["data"]["norm"] == "fixed"
    assert saved["fitted"]["normalization"] == source_config["fitted"]["normalization"]


def test_a_training_step_moves_away_from_the_model(source, tmp_path):
    """In another mode (Noise2Noise) from the .keras file: the weights load, then train."""
    _, run = source
    logdir = tmp_path / "moved"
    pairs = write_noisy_pairs(str(tmp_path / "pairs.h5"), n=4, size=32)
    train(TrainConfig.from_settings(h5=pairs, logdir=str(logdir), maxiter=3, mode="n2n",
                                    init_from=str(run / "generator_best.keras"), **TINY),
          verbose=0)  # fmt: skip
    source_model = keras.models.load_model(run / "generator_best.keras", compile=False)
    adapted = keras.models.load_model(logdir / "generator_last.keras", compile=False)
    change = [
        np.abs(a - b).max()
        for a, b in zip(adapted.get_weights(), source_model.get_weights(), strict=True)
    ]
    assert max(change) > 0


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"model": "adl"}, "cannot change --model adl \\(the model's is tomogan\\)"),
        ({"depth": 5}, "cannot change --depth 5 \\(the model's is 3\\)"),
        ({"norm_low": 2.0}, "cannot change --norm_low 2.0"),
    ],
)
def test_settings_unlike_the_model_are_refused(source, overrides, problem):
    path, run = source
    config = TrainConfig.from_settings(h5=path, init_from=str(run), **overrides)
    with pytest.raises(InputError, match=problem) as err:
        config.validate()
    assert err.value.path.endswith("generator_best.keras")


def test_the_shipped_model_and_what_cannot_be_trained(tmp_path):
    config = TrainConfig.from_settings(h5="x.h5", init_from="shipped")
    follow_source(config)
    with open(_shipped_config()) as f:
        shipped = json.load(f)
    assert (config.model.depth, config.model.residual) == (shipped["depth"], shipped["residual"])
    with pytest.raises(InputError, match="model not found"):
        TrainConfig.from_settings(h5="x.h5", init_from=str(tmp_path / "nowhere")).validate()
    savedmodel = tmp_path / "sm"
    savedmodel.mkdir()
    (savedmodel / "saved_model.pb").write_bytes(b"")
    with pytest.raises(InputError, match="a SavedModel is a serving graph"):
        TrainConfig.from_settings(h5="x.h5", init_from=str(savedmodel)).validate()


def _shipped_config() -> str:
    from tomogan_tf.inference import shipped_models_dir

    return f"{shipped_models_dir()}/tomogan_ct/config.json"
