"""One training run, from an HDF5 file to a run directory, resumable.

Run directory layout::

    config.json            every setting and the fitted normalisation
    checkpoints/           weights, optimizer states and iteration count (last few)
    logs/                  TensorBoard: losses, validation PSNR/SSIM, image panels
    generator_last.keras   generator after the latest validation
    generator_best.keras   generator with the best validation PSNR so far
    metrics.json           validation figures of the best generator
"""

from __future__ import annotations

import json
import math
import os

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tomogan_tf.data import (
    Stack,
    StackReader,
    check_aligned,
    check_min_size,
    cube_dataset,
    fit_normalizer,
    open_h5,
    open_stack,
    patch_dataset,
    slice_dataset,
)
from tomogan_tf.data.dxchange import (
    DATA,
    THETA,
    DxchangeInfo,
    FlatDarkCorrection,
    inspect_dxchange,
)
from tomogan_tf.data.hdf5 import check_finite
from tomogan_tf.data.normalization import PerImageNormalization, normalization_from_dict
from tomogan_tf.errors import InputError
from tomogan_tf.losses import VGGPerceptualLoss, load_vgg
from tomogan_tf.models import build_discriminator, build_generator
from tomogan_tf.training.callbacks import RunCheckpoint, StopAtIteration, TensorBoardLogger
from tomogan_tf.training.config import TrainConfig
from tomogan_tf.training.trainer import GANTrainer

PANEL_IMAGES = 3


def _resolve_config(config: TrainConfig) -> TrainConfig:
    """Merge with the run directory's saved config when resuming; refuse incompatible changes.

    A directory counts as a run once it holds a checkpoint: a first start that failed
    before training (bad flag, missing weights file) does not lock its settings in.
    """
    path = os.path.join(config.logdir, "config.json")
    if not (os.path.exists(path) and tf.train.latest_checkpoint(_checkpoint_dir(config))):
        return config
    saved = TrainConfig.load(path)
    changed = [
        f"--{name} {getattr(saved, name)} -> {getattr(config, name)}"
        for name in TrainConfig.FROZEN
        if getattr(saved, name) != getattr(config, name)
    ]
    if saved.uses_discriminator != config.uses_discriminator:
        changed.append(f"--ladv {saved.ladv} -> {config.ladv} (adds or drops the discriminator)")
    if changed:
        raise InputError(
            config.logdir,
            "holds a run with different settings (" + ", ".join(changed) + "); "
            "use the same settings to resume it or a new --logdir",
        )
    config.normalization, config.flat_field = saved.normalization, saved.flat_field
    return config


def _checkpoint_dir(config: TrainConfig) -> str:
    return os.path.join(config.logdir, "checkpoints")


def _saved_best_psnr(logdir: str) -> float:
    """Validation PSNR of generator_best.keras, which may be newer than the checkpoint."""
    return float(_best_metrics(logdir).get("psnr", -np.inf))


def _build_trainer(config: TrainConfig) -> GANTrainer:
    keras.utils.set_random_seed(config.seed)
    options = {"residual": config.residual} if config.model == "tomogan" else {}
    generator = build_generator(config.model, depth=config.depth, **options)
    discriminator = (
        build_discriminator(config.model, patch_size=config.psz)
        if config.uses_discriminator
        else None
    )
    perceptual = None
    if config.uses_perceptual:
        vgg = load_vgg(config.vgg_weights, config.vgg)
        try:
            perceptual = VGGPerceptualLoss(vgg, config.vgg_layer)
        except ValueError as err:
            raise InputError(None, f"--vgg_layer: {err}") from None
    if config.lperc > 0 and perceptual is None:
        logging.info("--vgg_weights none: training without the perceptual term")
    trainer = GANTrainer(generator, discriminator, perceptual, **config.trainer_options())
    trainer.compile(
        keras.optimizers.Adam(_learning_rate(config, config.lr_g, config.itg)),
        keras.optimizers.Adam(_learning_rate(config, config.lr_d, config.itd))
        if discriminator is not None
        else None,
    )
    return trainer


def _learning_rate(config: TrainConfig, rate: float, steps_per_iteration: int):
    """``rate``, or its cosine decay over the optimizer's steps in ``--maxiter`` iterations.

    The schedule reads the optimizer's own step count, which the checkpoint restores,
    so a resumed run continues on the same curve.
    """
    if config.lr_schedule == "constant":
        return rate
    steps = max(1, config.maxiter * max(1, steps_per_iteration))
    return keras.optimizers.schedules.CosineDecay(rate, decay_steps=steps, alpha=0.05)


def _checkpoint(trainer: GANTrainer, best: tf.Variable) -> tf.train.Checkpoint:
    parts = {
        "generator": trainer.generator,
        "g_optimizer": trainer.g_optimizer,
        "iteration": trainer.iteration,
        "best_psnr": best,
    }
    if trainer.discriminator is not None:
        parts.update(discriminator=trainer.discriminator, d_optimizer=trainer.d_optimizer)
    return tf.train.Checkpoint(**parts)


def _named_stacks(config: TrainConfig) -> tuple[Stack, Stack | None, Stack, Stack | None]:
    """Training and validation (noisy, target) stacks of the TomoGAN layout."""
    with open_h5(config.h5) as f:
        noisy, val_noisy = open_stack(f, config.ns_key), open_stack(f, config.val_ns_key)
        for stack in (noisy, val_noisy):
            check_finite(f, stack.key)
    if config.mode == "n2s":
        return noisy, None, val_noisy, None
    with open_h5(config.target_h5 or config.h5) as g:
        target, val_target = open_stack(g, config.gt_key), open_stack(g, config.val_gt_key)
        for stack in (target, val_target):
            check_finite(g, stack.key)
    return noisy, target, val_noisy, val_target


def _projection_stack(path: str, minus_log: bool) -> tuple[Stack, DxchangeInfo]:
    with open_h5(path) as f:
        info = inspect_dxchange(f)
        if info.single_projection or info.shape[0] < 2:
            raise InputError(path, f"'{DATA}' holds one projection; training needs a stack")
        correction = FlatDarkCorrection.from_file(f, info, minus_log)
        check_finite(f, DATA)
    return Stack(path, DATA, info.shape, correction=correction.apply), info


def _dxchange_stacks(config: TrainConfig) -> tuple[Stack, Stack | None, Stack, Stack | None]:
    """Training and validation stacks of Data Exchange projections, flat/dark corrected.

    The last ``val_fraction`` of the projections is held out for validation: adjacent
    angles look alike, so a block at the end is more nearly unseen than every k-th one.
    """
    stack, info = _projection_stack(config.h5, config.minus_log)
    stacks = [stack]
    if config.mode == "n2n":
        second, second_info = _projection_stack(config.target_h5, config.minus_log)
        check_aligned(stack, second, "second measurement")
        angles = (info.theta, second_info.theta)
        if all(a is not None for a in angles) and not np.allclose(*angles, rtol=0, atol=1e-3):
            raise InputError(
                config.target_h5,
                f"its angles '{THETA}' differ from those of {config.h5}; Noise2Noise"
                " needs the same projection angles in both scans",
            )
        stacks.append(second)
    if config.flat_field is None:
        config.flat_field = info.n_flats > 0
    n = stack.shape[0]
    n_val = max(1, round(config.val_fraction * n))
    if n - n_val < 1:
        raise InputError(config.h5, f"{n} projections leave none to train on; lower --val_fraction")
    train = [s.subset(0, n - n_val) for s in stacks]
    val = [s.subset(n - n_val, n) for s in stacks]
    if config.mode == "n2s":
        return train[0], None, val[0], None
    return train[0], train[1], val[0], val[1]


def _open_data(config: TrainConfig) -> tuple[StackReader, StackReader]:
    """Check the training and validation stacks; fit the normalisation on a first start.

    Runs (and frees every h5py object) before any tf.data reader thread starts.
    """
    volumes = config.dims == 3
    if config.layout == "dxchange":
        noisy, target, val_noisy, val_target = _dxchange_stacks(config)
    else:
        noisy, target, val_noisy, val_target = _named_stacks(config)
    for source, aligned in ((noisy, target), (val_noisy, val_target)):
        if aligned is not None:
            check_aligned(source, aligned, "clean" if config.mode == "supervised" else "target")
    if config.mode == "n2s" and config.depth > 1:
        for stack in (noisy, val_noisy):
            if stack.shape[0] < config.depth:
                raise InputError(
                    stack.path,
                    f"{stack.describe()} has {stack.shape[0]} slices, fewer than --depth"
                    f" {config.depth}: a slice's neighbours would include the slice itself,"
                    " which --mode n2s hides",
                )
    check_min_size(noisy, config.psz)
    check_min_size(val_noisy, config.psz if volumes else 8, "the smallest validation size")
    for stack in (noisy, val_noisy) if volumes else ():
        if stack.shape[0] < config.psz:
            raise InputError(
                stack.path,
                f"{stack.describe()} has {stack.shape[0]} slices; --model {config.model}"
                f" trains on cubes of --psz {config.psz} and needs at least that many",
            )
    if config.normalization is None and config.norm == "image":
        config.normalization = PerImageNormalization(config.norm_low, config.norm_high).to_dict()
    elif config.normalization is None:
        with open_h5(noisy.path) as f:
            normalizer = fit_normalizer(f, noisy, (config.norm_low, config.norm_high))
        config.normalization = normalizer.to_dict()
    return (
        StackReader(noisy, target, config.depth),
        StackReader(val_noisy, val_target, config.depth),
    )


def train(config: TrainConfig, verbose: int = 1) -> dict[str, float]:
    """Train (or resume) the run ``config.logdir``; return the best validation metrics.

    ``verbose`` is passed to `fit`: 1 shows a progress bar, 2 a line per validation.
    """
    config = _resolve_config(config.validate())
    train_reader, val_reader = _open_data(config)
    normalization = normalization_from_dict(config.normalization)
    trainer = _build_trainer(config)  # may fail (VGG weights): before anything is written
    os.makedirs(config.logdir, exist_ok=True)
    config.save(os.path.join(config.logdir, "config.json"))

    best = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name="best_psnr")
    manager = tf.train.CheckpointManager(
        _checkpoint(trainer, best),
        _checkpoint_dir(config),
        max_to_keep=config.max_keep,
    )
    if manager.latest_checkpoint:
        manager.checkpoint.restore(manager.latest_checkpoint).expect_partial()
        # A kill between saving generator_best.keras and the checkpoint leaves the
        # checkpoint's best score behind; never let a worse model replace that file.
        best.assign(max(float(best.numpy()), _saved_best_psnr(config.logdir)))
        logging.info(
            "resumed %s at iteration %d", manager.latest_checkpoint, int(trainer.iteration.numpy())
        )
    start = int(trainer.iteration.numpy())
    if start >= config.maxiter:
        logging.info("run %s already reached --maxiter %d", config.logdir, config.maxiter)
        return _best_metrics(config.logdir)

    masked = config.mode == "n2s"  # validation hides a grid phase per image
    patches = patch_dataset(
        train_reader,
        config.psz,
        config.mbsz,
        normalization,
        seed=config.seed,
        group=trainer.group_size,
        augment=config.augment,
        start=start * trainer.group_size * config.mbsz,
        volumes=config.dims == 3,
    )
    if config.dims == 3:
        val_data = cube_dataset(
            val_reader, config.val_slices, config.psz, normalization, with_index=masked
        )
        # The first validation cube; the panel shows its middle slice.
        panel = tuple(a[None] for a in val_reader.read_block(0, 0, 0, config.psz, normalization))
    else:
        n_val = val_reader.shape[0]
        count = n_val if config.val_slices == 0 else min(n_val, config.val_slices)
        val_indices = np.unique(np.linspace(0, n_val - 1, count).astype(int))
        val_data = slice_dataset(val_reader, val_indices, normalization, with_index=masked)
        panel_pairs = [
            val_reader.read(i, 0, 0, *val_reader.shape[1:], normalization)
            for i in val_indices[:PANEL_IMAGES]
        ]
        panel = tuple(np.stack(images) for images in zip(*panel_pairs, strict=True))

    trainer.fit(
        patches,
        steps_per_epoch=config.val_every,
        epochs=math.ceil(config.maxiter / config.val_every),
        initial_epoch=start // config.val_every,
        validation_data=val_data,
        callbacks=[
            StopAtIteration(config.maxiter),
            TensorBoardLogger(os.path.join(config.logdir, "logs"), config.log_every, panel),
            RunCheckpoint(manager, config.logdir, best),
        ],
        verbose=verbose,
        shuffle=False,  # the patch stream is already random
    )
    return _best_metrics(config.logdir)


def _best_metrics(logdir: str) -> dict[str, float]:
    path = os.path.join(logdir, "metrics.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)
