"""Typed training settings: sections, real types for the flags, config.json old and new."""

from __future__ import annotations

import json
import os

import pytest
from conftest import ROOT

from tomogan_tf.errors import InputError
from tomogan_tf.training import LossConfig, ScheduleConfig, TrainConfig
from tomogan_tf.training.config import SECTIONS, settings
from tomogan_tf.training.defaults import FAMILY_DEFAULTS

pytestmark = pytest.mark.unit  # settings only: nothing is trained


def test_every_setting_has_a_real_type_a_section_and_a_unique_flag():
    declared = settings()
    flags = [s.flag for s in declared]
    assert len(flags) == len(set(flags))
    assert {s.section for s in declared} == set(SECTIONS)
    assert {s.type for s in declared} <= {int, float, bool, str}
    by_flag = {s.flag: s for s in declared}
    assert by_flag["psz"].type is int and by_flag["psz"].optional and by_flag["psz"].per_family
    assert by_flag["lr_g"].type is float and not by_flag["lr_g"].optional
    assert by_flag["augment"].type is bool and by_flag["augment"].frozen
    assert by_flag["model"].section == "model" and by_flag["model"].name == "family"
    # Every family-dependent setting has a value for every family.
    for family, defaults in FAMILY_DEFAULTS.items():
        missing = {s.flag for s in declared if s.per_family} - set(defaults)
        assert missing == set(), family


def test_flat_settings_land_in_their_sections_and_resolve_per_family():
    config = TrainConfig.from_settings(h5="x.h5", model="adl", maxiter=10, lhist=0.0)
    assert config.model.family == "adl" and config.schedule.maxiter == 10
    assert config.data.psz is None  # unset until validated
    config.validate()
    assert (config.data.psz, config.data.mbsz, config.loss.gan_loss) == (256, 4, "hinge")
    assert config.loss.lhist == 0.0  # what was set stays set
    assert config.data.gt_key == "train_gt" and config.data.val_gt_key == "test_gt"
    with pytest.raises(TypeError, match="unknown settings: nope"):
        TrainConfig.from_settings(nope=1)


def test_config_json_round_trips_and_older_flat_files_still_load(tmp_path):
    config = TrainConfig.from_settings(h5="x.h5", model="idgan", depth=3).validate()
    config.fitted.normalization = {"scope": "image", "percentiles": [0.5, 99.5]}
    path = str(tmp_path / "config.json")
    config.save(path)
    with open(path) as f:
        saved = json.load(f)
    assert saved["format"] == 2 and saved["model"]["family"] == "idgan"
    assert TrainConfig.load(path) == config

    with open(os.path.join(ROOT, "saved_models", "tomogan_ct", "config.json")) as f:
        flat = json.load(f)
    assert "data" not in flat  # the shipped model's config predates sections
    old = TrainConfig.from_dict(flat)
    assert old.model.family == flat["model"] and old.model.depth == flat["depth"]
    assert old.fitted.normalization == flat["normalization"]
    assert old.flat()["maxiter"] == flat["maxiter"]


def test_an_unreadable_config_names_the_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"config\.json: cannot read run config"):
        TrainConfig.load(str(path))


def test_resume_checks_list_every_frozen_setting_changed():
    saved = TrainConfig.from_settings(h5="x.h5", psz=64, seed=1).validate()
    now = TrainConfig.from_settings(h5="x.h5", psz=32, seed=2, maxiter=5, ladv=0.0).validate()
    changed = now.changed_frozen(saved)
    assert "--psz 64 -> 32" in changed and "--seed 1 -> 2" in changed
    assert any(c.startswith("--ladv") and "discriminator" in c for c in changed)
    assert not any("maxiter" in c for c in changed)  # a resume may train longer


def test_section_defaults_are_the_family_ones_for_the_trainer():
    losses = LossConfig.for_family("adl", "n2s")
    assert losses.ladv == 0.0 and losses.lpyr == 0.0 and losses.ll1 == 1.0
    schedule = ScheduleConfig.for_family("adl", maxiter=5)
    assert (schedule.g_warmup, schedule.d_every, schedule.maxiter) == (1000, 3, 5)


@pytest.mark.parametrize(
    "overrides, problem",
    [
        (dict(mbsz=0), "--mbsz must be at least 1"),
        (dict(itd=-1), "--itd must not be negative"),
        (dict(lmse=-1.0), "--lmse must not be negative"),
        (dict(lr_schedule="linear"), "--lr_schedule must be one of constant, cosine"),
        (dict(layout="zarr"), "--layout must be one of tomogan, dxchange"),
        (dict(model="unet"), "--model must be one of"),
    ],
)
def test_values_outside_their_declaration_are_refused(overrides, problem):
    with pytest.raises(InputError, match=problem):
        TrainConfig.from_settings(h5="x.h5", **overrides).validate()
