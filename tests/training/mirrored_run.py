"""Train the same tiny run on one device and mirrored over two logical CPU devices.

Run as a script by ``test_distribute.py`` (logical devices must be set before
TensorFlow starts, so not in a test worker): ``python mirrored_run.py H5 OUT``. Writes
OUT/one and OUT/two, and OUT/figures.json: the logged training losses of each run by
iteration, and the largest difference between their generators' weights; and OUT/gan,
a mirrored run with a critic and warm-ups, whose logged losses it records too.
"""

from __future__ import annotations

import glob
import json
import os
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # noqa: E402
import numpy as np  # noqa: E402

from tomogan_tf.training import TrainConfig, train  # noqa: E402


def logged_losses(logdir: str) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for path in glob.glob(os.path.join(logdir, "logs", "events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag.startswith("train/"):
                    out.setdefault(value.tag, {})[event.step] = float(tf.make_ndarray(value.tensor))
    return out


def main(h5: str, out: str) -> None:
    runs = {}
    for name, strategy in (("one", "none"), ("two", "mirrored")):
        logdir = os.path.join(out, name)
        config = TrainConfig.from_settings(
            h5=h5, logdir=logdir, strategy=strategy, psz=16, mbsz=4, maxiter=2,
            val_every=1, log_every=1, val_slices=2, ladv=0.0, vgg_weights="none",
        )  # fmt: skip
        metrics = train(config, verbose=0)
        weights = keras.models.load_model(os.path.join(logdir, "generator_last.keras"))
        runs[name] = (logged_losses(logdir), weights.get_weights(), metrics)
    (one, w_one, m_one), (two, w_two, m_two) = runs["one"], runs["two"]
    # A GAN with a critic and warm-ups (generator alone, then critic alone, then both):
    # each phase's step compiled apart, its replica syncs outside any tf.cond.
    gan = os.path.join(out, "gan")
    train(
        TrainConfig.from_settings(
            h5=h5, logdir=gan, strategy="mirrored", psz=16, mbsz=4, maxiter=3, val_every=3,
            log_every=1, val_slices=2, g_warmup=1, d_warmup=1, vgg_weights="none",
        ),
        verbose=0,
    )  # fmt: skip
    figures = {
        "losses": {"one": one, "two": two},
        "max_weight_difference": max(
            float(np.max(np.abs(a - b))) for a, b in zip(w_one, w_two, strict=True)
        ),
        "val_psnr": {"one": m_one["psnr"], "two": m_two["psnr"]},
        "gan_losses": logged_losses(gan),
        "replicas": tf.distribute.MirroredStrategy(
            devices=[d.name for d in tf.config.list_logical_devices("CPU")]
        ).num_replicas_in_sync,
    }
    with open(os.path.join(out, "figures.json"), "w") as f:
        json.dump(figures, f)
    sys.stdout.flush()
    os._exit(0)  # tf.data reader threads can hold a plain script at exit


if __name__ == "__main__":
    main(*sys.argv[1:3])
