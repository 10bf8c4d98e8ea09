"""The TensorFlow half of a training run: the trainer, its checkpoint, and `fit`.

`tomogan_tf.training.run.train` checks the settings and the data without TensorFlow,
then calls `fit` here with the checked stacks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from tomogan_tf.data.normalization import normalization_from_dict
from tomogan_tf.data.pipeline import StackReader, cube_dataset, patch_dataset, slice_dataset
from tomogan_tf.errors import InputError
from tomogan_tf.losses import VGGPerceptualLoss, load_vgg
from tomogan_tf.models import build_discriminator, build_generator
from tomogan_tf.training.callbacks import RunCheckpoint, StopAtIteration, TensorBoardLogger
from tomogan_tf.training.config import RunConfig, TrainConfig
from tomogan_tf.training.distribute import (
    Role,
    cluster_role,
    fit_distributed,
    make_strategy,
    replica_datasets,
    resolve_strategy,
)
from tomogan_tf.training.init_from import load_initial_weights
from tomogan_tf.training.run import TrainingStacks
from tomogan_tf.training.run_dir import RunDir
from tomogan_tf.training.trainer import GANTrainer
from tomogan_tf.utils.precision import loss_scaled, resolve, unscaled, with_precision

TRAINING_PRECISION = next(f.default for f in dataclasses.fields(RunConfig) if f.name == "precision")

PANEL_IMAGES = 3


def build_trainer(config: TrainConfig) -> GANTrainer:
    """The compiled trainer of a validated config: networks, perceptual loss, optimizers."""
    model, loss, schedule = config.model, config.loss, config.schedule
    keras.utils.set_random_seed(config.run.seed)
    options = {"residual": model.residual} if model.family == "tomogan" else {}
    generator = build_generator(model.family, depth=model.depth, **options)
    discriminator = (
        build_discriminator(model.family, patch_size=config.data.psz)
        if loss.uses_discriminator
        else None
    )
    perceptual = None
    if loss.uses_perceptual:
        vgg = load_vgg(loss.vgg_weights, loss.vgg)
        try:
            perceptual = VGGPerceptualLoss(vgg, loss.vgg_layer)
        except ValueError as err:
            raise InputError(None, f"--vgg_layer: {err}") from None
    if loss.lperc > 0 and perceptual is None:
        logging.info("--vgg_weights none: training without the perceptual term")
    chosen = resolve(config.run.precision)
    if config.run.precision == TRAINING_PRECISION:  # the default, not necessarily asked for
        chosen = dataclasses.replace(
            chosen, reason="the training default; --precision auto picks per device"
        )
    logging.info("%s", chosen.describe())
    generator = with_precision(generator, chosen.policy)
    if discriminator is not None:
        discriminator = with_precision(discriminator, chosen.policy)
    if perceptual is not None:
        perceptual.features = with_precision(perceptual.features, chosen.policy)
        perceptual.features.trainable = False
    trainer = GANTrainer(
        generator,
        discriminator,
        perceptual,
        losses=loss,
        schedule=schedule,
        mode=config.data.mode,
        input_multiple=model.input_multiple,
        seed=config.run.seed,
    )
    trainer.compile(
        loss_scaled(
            keras.optimizers.Adam(_learning_rate(config, schedule.lr_g, schedule.itg)),
            chosen.policy,
        ),
        loss_scaled(
            keras.optimizers.Adam(_learning_rate(config, schedule.lr_d, schedule.itd)),
            chosen.policy,
        )
        if discriminator is not None
        else None,
    )
    trainer.precision = chosen
    return trainer


def _learning_rate(config: TrainConfig, rate: float, steps_per_iteration: int):
    """``rate``, or its cosine decay over the optimizer's steps in ``--maxiter`` iterations.

    The schedule reads the optimizer's own step count, which the checkpoint restores,
    so a resumed run continues on the same curve.
    """
    if config.schedule.lr_schedule == "constant":
        return rate
    steps = max(1, config.schedule.maxiter * max(1, steps_per_iteration))
    return keras.optimizers.schedules.CosineDecay(rate, decay_steps=steps, alpha=0.05)


def training_checkpoint(trainer: GANTrainer, best: tf.Variable) -> tf.train.Checkpoint:
    """What a checkpoint holds: networks, optimizers, iteration and the best score."""
    parts = {
        "generator": trainer.generator,
        "g_optimizer": unscaled(trainer.g_optimizer),
        "iteration": trainer.iteration,
        "best_psnr": best,
    }
    if trainer.discriminator is not None:
        parts.update(discriminator=trainer.discriminator, d_optimizer=unscaled(trainer.d_optimizer))
    return tf.train.Checkpoint(**parts)


def fit(
    config: TrainConfig,
    run: RunDir,
    stacks: TrainingStacks,
    verbose: int,
    role: Role | None = None,
) -> dict[str, float]:
    """Build the trainer, restore the newest checkpoint that loads, and train to --maxiter.

    Under a distribution strategy (``--strategy``, `tomogan_tf.training.distribute`)
    the trainer lives in the strategy's scope and the distributed loop trains it;
    ``role`` is this process's place in the cluster (default: from ``TF_CONFIG``).
    """
    role = role or cluster_role()
    kind = resolve_strategy(config.run.strategy, role)
    strategy = make_strategy(kind)  # before TensorFlow runs anything
    chief = role.is_chief
    noisy, target, val_noisy, val_target = stacks
    train_reader = StackReader(noisy, target, config.model.depth)
    val_reader = StackReader(val_noisy, val_target, config.model.depth)
    normalization = normalization_from_dict(config.fitted.normalization)
    data, schedule = config.data, config.schedule
    with strategy.scope() if strategy else contextlib.nullcontext():
        trainer = build_trainer(config)  # may fail (VGG weights): before anything is written
        best = tf.Variable(-np.inf, dtype=tf.float64, trainable=False, name="best_psnr")
        checkpoint = training_checkpoint(trainer, best)
        restored = run.restore_newest(checkpoint, repair=chief)
        if not restored and config.model.init_from:
            source = load_initial_weights(trainer.generator, config.model.init_from)
            logging.info("starting from the weights of %s", source)
    if strategy is not None:
        logging.info(
            "%s strategy: %d replica(s) in sync, %s of %d worker(s); global batch %d",
            kind,
            strategy.num_replicas_in_sync,
            "chief" if chief else f"{role.task_type} {role.index}",
            role.workers,
            data.mbsz,
        )
    if chief:
        run.save_config(config)
    if restored:
        # A kill between saving generator_best.keras and the checkpoint leaves the
        # checkpoint's best score behind; never let a worse model replace that file.
        best.assign(max(float(best.numpy()), float(run.metrics().get("psnr", -np.inf))))
        logging.info("resumed %s at iteration %d", restored, int(trainer.iteration.numpy()))
    start = int(trainer.iteration.numpy())
    if start >= schedule.maxiter:
        logging.info("run %s already reached --maxiter %d", run.path, schedule.maxiter)
        return run.metrics() if chief else {}

    volumes = config.model.dims == 3
    masked = data.mode == "n2s"  # validation hides a grid phase per image

    def patches(replicas=((0,), 1)):
        return patch_dataset(
            train_reader,
            data.psz,
            data.mbsz,
            normalization,
            seed=config.run.seed,
            group=trainer.group_size,
            augment=data.augment,
            start=start * trainer.group_size * data.mbsz,
            volumes=volumes,
            replicas=replicas,
        )

    if volumes:
        val_data = cube_dataset(
            val_reader, data.val_slices, data.psz, normalization, with_index=masked
        )
        # The first validation cube; the panel shows its middle slice.
        panel = tuple(a[None] for a in val_reader.read_block(0, 0, 0, data.psz, normalization))
    else:
        n_val = val_reader.shape[0]
        count = n_val if data.val_slices == 0 else min(n_val, data.val_slices)
        val_indices = np.unique(np.linspace(0, n_val - 1, count).astype(int))
        val_data = slice_dataset(val_reader, val_indices, normalization, with_index=masked)
        panel_pairs = [
            val_reader.read(i, 0, 0, *val_reader.shape[1:], normalization)
            for i in val_indices[:PANEL_IMAGES]
        ]
        panel = tuple(np.stack(images) for images in zip(*panel_pairs, strict=True))

    def saver() -> RunCheckpoint:
        return RunCheckpoint(run.checkpoint_manager(checkpoint, config.run.max_keep), run, best)

    # The stacks' files stay open for the whole run, not reopened for every patch.
    with train_reader.opened(), val_reader.opened():
        if strategy is None:
            trainer.fit(
                patches(),
                steps_per_epoch=schedule.val_every,
                epochs=math.ceil(schedule.maxiter / schedule.val_every),
                initial_epoch=start // schedule.val_every,
                validation_data=val_data,
                callbacks=[
                    StopAtIteration(schedule.maxiter),
                    TensorBoardLogger(run.logs, schedule.log_every, panel),
                    saver(),
                ],
                verbose=verbose,
                shuffle=False,  # the patch stream is already random
            )
        else:
            chief_callbacks = (
                [
                    TensorBoardLogger(run.logs, schedule.log_every, panel, distributed=True),
                    saver(),
                ]
                if chief
                else []
            )
            fit_distributed(
                trainer,
                strategy,
                role,
                replica_datasets(strategy, patches),
                val_data,
                chief_callbacks,
                checkpoint,
                start=start,
                maxiter=schedule.maxiter,
                val_every=schedule.val_every,
                log_every=schedule.log_every,
                checkpoint_dir=run.checkpoints,
                verbose=verbose,
            )
    return run.metrics() if chief else {}
