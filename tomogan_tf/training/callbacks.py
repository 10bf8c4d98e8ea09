"""Callbacks that turn `fit` into a resumable, observable training run."""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tomogan_tf.training.run_dir import RunDir
from tomogan_tf.training.trainer import GANTrainer


class StopAtIteration(keras.callbacks.Callback):
    """Stop `fit` once the trainer's iteration count reaches ``maxiter``."""

    def __init__(self, maxiter: int):
        super().__init__()
        self.maxiter = maxiter

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.iteration.numpy()) >= self.maxiter:
            self.model.stop_training = True


class RunCheckpoint(keras.callbacks.Callback):
    """After each validation: checkpoint everything, keep the last and best generator.

    The checkpoint (weights, optimizer states, iteration, best score) is what a
    restart resumes from; TensorFlow writes it and then atomically updates the
    index, so a run killed at any moment leaves the previous checkpoint loadable.
    ``generator_last.keras`` and ``generator_best.keras`` are written the same way,
    and ``metrics.json`` records the validation figures of the best model.
    """

    def __init__(self, manager: tf.train.CheckpointManager, run: RunDir, best: tf.Variable):
        super().__init__()
        self.manager, self.run, self.best = manager, run, best

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        trainer: GANTrainer = self.model
        iteration = int(trainer.iteration.numpy())
        psnr = logs.get("val_psnr")
        if psnr is not None and float(psnr) > float(self.best.numpy()):
            self.best.assign(float(psnr))
            self.run.save_model(trainer.generator, self.run.best_model)
            val = {k[4:]: float(v) for k, v in logs.items() if k.startswith("val_")}
            self.run.save_metrics({"iteration": iteration, **val})
        self.run.save_model(trainer.generator, self.run.last_model)
        self.manager.save(checkpoint_number=iteration)


def image_panel(noisy: np.ndarray, denoised: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """Side-by-side noisy | denoised | clean, in [0, 1], shaped (batch, H, 3W, 1).

    Volumes (batch, D, H, W, 1) show their middle slice.
    """
    if noisy.ndim == 5:
        middle = noisy.shape[1] // 2
        noisy, denoised, clean = (v[:, middle] for v in (noisy, denoised, clean))
    centre = noisy.shape[-1] // 2
    panel = np.concatenate([noisy[..., centre : centre + 1], denoised, clean], axis=2)
    return np.clip(panel, 0.0, 1.0)


class TensorBoardLogger(keras.callbacks.Callback):
    """Losses every ``log_every`` iterations, validation metrics and image panels per epoch.

    Everything is logged against the trainer's own iteration count, so a resumed
    run continues the curves instead of starting them again at zero.
    """

    def __init__(
        self,
        logdir: str,
        log_every: int,
        panel: tuple[np.ndarray, np.ndarray],
        distributed: bool = False,
    ):
        """``distributed``: in `tomogan_tf.training.distribute.fit_distributed`, whose logs
        leave out the terms not run and which zeroes the trackers itself, on every
        worker (under a strategy, reading or zeroing them here would be a collective
        operation the chief cannot do alone)."""
        super().__init__()
        self.writer = tf.summary.create_file_writer(logdir)
        self.log_every = log_every
        self.panel_noisy, self.panel_clean = panel
        self.distributed = distributed

    def on_train_batch_end(self, batch, logs=None):
        iteration = int(self.model.iteration.numpy())
        if iteration % self.log_every == 0 and logs:
            trackers = self.model.trackers
            with self.writer.as_default(step=iteration):
                for name, value in logs.items():
                    # Skip terms not run since the last point (critic during warm-up).
                    if (
                        self.distributed
                        or name not in trackers
                        or float(trackers[name].count.numpy()) > 0
                    ):
                        tf.summary.scalar(f"train/{name}", float(value))
            if self.distributed:
                return
            # Each point is then the mean of the last log_every iterations, not a
            # running mean since the last validation.
            for tracker in self.model.trackers.values():
                tracker.reset_state()

    def on_epoch_end(self, epoch, logs=None):
        iteration = int(self.model.iteration.numpy())
        with self.writer.as_default(step=iteration):
            for name, value in (logs or {}).items():
                if name.startswith("val_") and math.isfinite(float(value)):
                    tf.summary.scalar(f"val/{name[4:]}", float(value))
            denoised = self.model.denoise(tf.constant(self.panel_noisy)).numpy()
            tf.summary.image(
                "val/noisy_denoised_clean",
                image_panel(self.panel_noisy, denoised, self.panel_clean),
                max_outputs=len(self.panel_noisy),
            )
        self.writer.flush()
