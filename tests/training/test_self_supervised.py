"""Training without clean images: Noise2Noise pairs, Noise2Self masking, Data Exchange input."""

from __future__ import annotations

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf
from helpers import write_noisy_pairs

from tomogan_tf import build_generator
from tomogan_tf.data import Normalizer, StackReader, open_stack, patch_dataset
from tomogan_tf.data.masking import apply_mask
from tomogan_tf.errors import InputError
from tomogan_tf.training import (
    GANTrainer,
    LossConfig,
    TrainConfig,
    build_trainer,
    open_training_data,
    train,
)

RNG = np.random.default_rng(0)
TINY = dict(psz=16, mbsz=2, val_every=3, log_every=3, val_slices=2, vgg_weights="none")


# ------------------------------------------------------------------------------ config


def test_mode_defaults():
    n2n = TrainConfig.from_settings(h5="x.h5", mode="n2n").validate()
    assert (n2n.data.gt_key, n2n.data.val_gt_key) == ("train_ns2", "test_ns2")
    assert (n2n.loss.ladv, n2n.loss.lperc) == (0, 0)
    second = TrainConfig.from_settings(h5="x.h5", mode="n2n", target_h5="y.h5").validate()
    assert (second.data.gt_key, second.data.val_gt_key) == ("train_ns", "test_ns")
    n2s = TrainConfig.from_settings(h5="x.h5", mode="n2s", model="adl").validate()
    assert n2s.data.gt_key is None
    assert (n2s.loss.ladv, n2s.loss.lpyr, n2s.loss.lhist, n2s.loss.ll1) == (0, 0, 0, 1.0)
    assert TrainConfig.from_settings(h5="x.h5").validate().data.gt_key == "train_gt"
    # A setting given explicitly wins over the mode's default.
    assert TrainConfig.from_settings(h5="x.h5", mode="n2s", ladv=1e-3).validate().loss.ladv == 1e-3


@pytest.mark.parametrize(
    "overrides, problem",
    [
        ({"mode": "n2s", "model": "adl", "lpyr": 1.0}, "--lpyr compare whole images"),
        ({"mode": "n2s", "lperc": 1.0, "vgg_weights": "v.h5"}, "--lperc compare whole images"),
        ({"mode": "n2s", "gt_key": "train_gt"}, "drop --gt_key"),
        ({"mode": "n2x"}, "--mode must be one of supervised, n2n, n2s"),
        ({"layout": "dxchange"}, "hold no clean images"),
        ({"layout": "dxchange", "mode": "n2n"}, "needs --target_h5"),
        ({"layout": "dxchange", "mode": "n2s", "val_fraction": 1.0}, "--val_fraction"),
        ({"minus_log": True}, "--minus_log applies to --layout dxchange only"),
        ({"target_h5": "y.h5"}, "--target_h5 applies to --mode n2n only"),
        ({"mode": "n2s", "mask": "dots"}, "--mask must be one of grid, random"),
    ],
)
def test_impossible_mode_settings_are_refused(overrides, problem):
    with pytest.raises(InputError, match=problem):
        TrainConfig.from_settings(h5="x.h5", **overrides).validate()


# -------------------------------------------------------------------------- n2n pairs


def test_n2n_targets_come_aligned_from_a_second_file(tmp_path):
    first, second = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    values = np.arange(6 * 24 * 24, dtype="float32").reshape(6, 24, 24)
    with h5py.File(first, "w") as f:
        f["train_ns"] = values
    with h5py.File(second, "w") as f:
        f["train_ns"] = values + 1e5
    reader = StackReader(open_stack(first, "train_ns"), open_stack(second, "train_ns"), depth=3)
    data = patch_dataset(reader, 8, 4, Normalizer(0.0, 2e5), seed=2, group=2)
    for noisy, target in data.take(3):
        noisy, target = (np.round(t.numpy() * 2e5) for t in (noisy, target))
        # Target = centre slice of the noisy neighbours + 1e5, pixel for pixel,
        # through the same random crop and dihedral transform.
        np.testing.assert_array_equal(target[..., 0] - noisy[..., 1], 1e5)


def test_n2n_pairs_of_other_shapes_are_refused(tmp_path):
    path = write_noisy_pairs(str(tmp_path / "pairs.h5"))
    with h5py.File(path, "a") as f:
        data = f["train_ns2"][:]
        del f["train_ns2"]
        f["train_ns2"] = data[:5]
    config = TrainConfig.from_settings(
        h5=path, logdir=str(tmp_path / "r"), mode="n2n", **TINY
    ).validate()
    with pytest.raises(InputError, match=r"'train_ns2' has shape \(5, 32, 32\); they must match"):
        open_training_data(config)
    second = str(tmp_path / "other.h5")
    with h5py.File(second, "w") as f:
        f["train_ns"] = np.zeros((6, 32, 24), "float32")
        f["test_ns"] = np.zeros((6, 32, 32), "float32")
    config = TrainConfig.from_settings(
        h5=path, logdir=str(tmp_path / "r"), mode="n2n", target_h5=second, **TINY
    ).validate()
    with pytest.raises(InputError, match=r"in .*other.h5 has shape \(6, 32, 24\)"):
        open_training_data(config)


# ------------------------------------------------------------------------- n2s trainer


@pytest.mark.parametrize("mask", ["grid", "random"])
def test_n2s_generator_loss_reads_only_hidden_pixels_and_trains(mask):
    keras.utils.set_random_seed(1)
    losses = LossConfig.for_family("tomogan", "n2s", mask=mask)
    trainer = GANTrainer(build_generator("tomogan"), mode="n2s", losses=losses)
    noisy = tf.constant(RNG.random((2, 16, 16, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        loss, terms = trainer.generator_losses(noisy, noisy, step=5)
    assert set(terms) == {"mse"}
    grads = tape.gradient(loss, trainer.generator.trainable_variables)
    assert float(tf.linalg.global_norm(grads)) > 0
    _, hidden = apply_mask(noisy, mask, 5, seed=0)
    # A target changed wherever nothing is hidden gives the same loss.
    moved = tf.where(hidden > 0, noisy, noisy + 1.0)
    again, _ = trainer.generator_losses(noisy, moved, step=5)
    assert float(again) == pytest.approx(float(loss), rel=1e-6)
    # ...and changed at the hidden pixels, a different one.
    other, _ = trainer.generator_losses(noisy, tf.where(hidden > 0, noisy + 1.0, noisy), step=5)
    assert float(other) > float(loss)


def test_n2s_validation_scores_hidden_pixels_against_the_noisy_image():
    trainer = GANTrainer(
        build_generator("tomogan"), mode="n2s", losses=LossConfig.for_family("tomogan", "n2s")
    )
    trainer.compile(keras.optimizers.Adam(1e-4))
    noisy = RNG.random((1, 16, 16, 1)).astype("float32")
    logs = trainer.test_step((tf.constant(noisy), tf.constant(noisy), tf.constant([3])))
    assert set(logs) == {"psnr"}
    from tomogan_tf.data.masking import apply_grid_mask

    masked, mask = apply_grid_mask(noisy, 15)  # validation image 3 hides phase 5 * 3 % 16
    pred = trainer.generator(masked).numpy()
    mse = np.mean((pred - noisy)[mask.numpy() > 0] ** 2)
    assert float(logs["psnr"]) == pytest.approx(-10 * np.log10(mse), rel=1e-4)


@pytest.mark.parametrize("mode", ["supervised", "n2n", "n2s"])
def test_ladv_0_builds_no_discriminator_in_any_mode_and_other_weights_keep_one(mode, tmp_path):
    path = write_noisy_pairs(str(tmp_path / "pairs.h5"))
    base = dict(h5=path, logdir=str(tmp_path / "r"), mode=mode, **TINY)
    off = build_trainer(TrainConfig.from_settings(**base, ladv=0.0).validate())
    assert off.discriminator is None and off.d_optimizer is None and off.group_size == 1
    on = build_trainer(
        TrainConfig.from_settings(**base, ladv=1e-3, gan_loss="bce", itd=1).validate()
    )
    assert on.discriminator is not None and on.group_size == 2
    # One iteration trains the critic too.
    x = tf.constant(RNG.random((2, 2, 16, 16, 1)).astype("float32"))
    tf.function(on.train_step)((x, x))
    assert int(on.d_optimizer.iterations) == 1 and int(on.g_optimizer.iterations) == 1


def test_n2s_run_never_reads_clean_images(tmp_path):
    path = write_noisy_pairs(str(tmp_path / "noisy.h5"))
    with h5py.File(path, "a") as f:  # only noisy stacks are left
        for key in ("train_gt", "test_gt", "train_ns2", "test_ns2"):
            del f[key]
    metrics = train(
        TrainConfig.from_settings(
            h5=path, logdir=str(tmp_path / "run"), mode="n2s", maxiter=6, **TINY
        ),
        verbose=0,
    )
    assert set(metrics) == {"iteration", "psnr"} and np.isfinite(metrics["psnr"])


# ------------------------------------------------------------------- J-invariant inference


def box_filter(x: np.ndarray) -> np.ndarray:
    """A 3x3 mean of the centre channel: a 'network' whose output at a pixel reads that pixel."""
    centre = x[..., x.shape[-1] // 2]
    padded = np.pad(centre, ((0, 0), (1, 1), (1, 1)), mode="edge")
    out = sum(
        padded[:, dy : dy + centre.shape[1], dx : dx + centre.shape[2]]
        for dy in range(3)
        for dx in range(3)
    )
    return (out / 9.0)[..., None].astype("float32")


@pytest.mark.parametrize("shape", [(10, 10), (13, 21), (16, 16)])
def test_jinv_denoiser_never_reads_the_pixel_it_predicts(shape):
    """Also where the image is padded to the network's multiple (mirrored copies)."""
    from tomogan_tf.inference.denoiser import Denoiser

    image = RNG.random(shape).astype("float32")
    jinv = Denoiser(box_filter, None, multiple=8, margin=0, inference="jinv")
    direct = Denoiser(box_filter, None, multiple=8, margin=0)
    base, base_direct = jinv(image), direct(image)
    for y, x in [(shape[0] - 1, shape[1] - 1), (0, 0), (shape[0] // 2, 3)]:
        moved = image.copy()
        moved[y, x] += 10.0
        assert jinv(moved)[y, x] == pytest.approx(base[y, x], abs=1e-6)
        assert abs(direct(moved)[y, x] - base_direct[y, x]) > 0.5


def test_jinv_refuses_what_it_cannot_keep_j_invariant():
    from tomogan_tf.inference.denoiser import Denoiser

    with pytest.raises(InputError, match="--inference jinv is for 2-D models"):
        Denoiser(box_filter, None, dims=3, inference="jinv")
    den = Denoiser(box_filter, None, depth=5, margin=0, inference="jinv")
    with pytest.raises(InputError, match="fewer than the model's --depth 5"):
        den(RNG.random((3, 8, 8)).astype("float32"))
    assert den(RNG.random((5, 8, 8)).astype("float32")).shape == (5, 8, 8)


def test_n2s_refuses_stacks_thinner_than_the_depth(tmp_path):
    path = write_noisy_pairs(str(tmp_path / "thin.h5"), n=2)
    config = TrainConfig.from_settings(
        h5=path, logdir=str(tmp_path / "r"), mode="n2s", depth=3, **TINY
    )
    with pytest.raises(InputError, match="has 2 slices, fewer than --depth 3"):
        open_training_data(config.validate())


def test_data_exchange_pairs_need_the_same_angles(tmp_path):
    from data_tools.make_projection_dataset import make_projection_dataset

    first, second = str(tmp_path / "a.h5"), str(tmp_path / "b.h5")
    make_projection_dataset(first, second, n_angles=12, rows=16, size=16, flats=2, darks=1)
    with h5py.File(second, "a") as f:
        f["exchange/theta"][...] = f["exchange/theta"][:] + 0.5
    config = TrainConfig.from_settings(
        h5=first, target_h5=second, layout="dxchange", mode="n2n", logdir=str(tmp_path / "r"),
        **TINY,
    )  # fmt: skip
    with pytest.raises(InputError, match="angles 'exchange/theta' differ"):
        open_training_data(config.validate())
    # A model trained with flat fields refuses a file without them.
    from tomogan_tf.data.sources import open_dxchange
    from tomogan_tf.inference.denoiser import Denoiser

    with h5py.File(second, "a") as f:
        del f["exchange/data_white"]
    den = Denoiser(box_filter, None, trained={"layout": "dxchange", "flat_field": True})
    with open_dxchange(second) as source, pytest.raises(InputError, match="has no flat fields"):
        den.check_flat_field(source)
    config = TrainConfig.from_settings(
        h5=first, layout="dxchange", mode="n2s", logdir=str(tmp_path / "s"), **TINY
    ).validate()
    open_training_data(config)
    assert config.fitted.flat_field is True
