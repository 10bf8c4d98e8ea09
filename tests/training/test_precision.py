"""Training under each precision: 16-bit compute, float32 losses, loss scaling for float16."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from tomogan_tf.training import TrainConfig, build_trainer, train
from tomogan_tf.training.run_dir import RunDir

TINY = dict(psz=16, mbsz=2, val_every=3, log_every=3, val_slices=2, vgg_weights="none")


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_a_mixed_step_trains_both_networks_in_16_bits_with_float32_losses(policy):
    config = TrainConfig.from_settings(h5="x.h5", precision=policy, ladv=1e-3, **TINY).validate()
    trainer = build_trainer(config)
    assert trainer.precision.policy == policy
    compute = policy.split("_")[1]
    for net in (trainer.generator, trainer.discriminator):
        assert compute in {layer.compute_dtype for layer in net.layers}
        assert all(w.dtype == "float32" for w in net.weights)
    scaling = isinstance(trainer.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert scaling == (policy == "mixed_float16")
    assert isinstance(trainer.d_optimizer, keras.optimizers.LossScaleOptimizer) == scaling
    rng = np.random.default_rng(0)
    x = tf.constant(rng.random((3, 2, 16, 16, 1)).astype("float32"))
    before = [w.numpy() for w in trainer.generator.trainable_weights]
    logs = tf.function(trainer.train_step)((x, x))
    assert all(v.dtype == tf.float32 and np.isfinite(float(v)) for v in logs.values())
    assert int(trainer.g_optimizer.iterations) == 1
    if scaling:  # a step whose scaled gradient overflowed is skipped and the scale halved
        d = trainer.d_optimizer
        assert int(d.iterations) == 2 or float(d.dynamic_scale) < d.initial_scale
    else:
        assert int(trainer.d_optimizer.iterations) == 2
    moved = [np.abs(w.numpy() - b).max() for w, b in zip(trainer.generator.trainable_weights,
                                                        before, strict=True)]  # fmt: skip
    assert max(moved) > 0
    assert trainer.generator(x[0]).dtype == tf.float32


def test_a_float16_run_resumes_in_float32(pair_file, tmp_path):
    logdir = str(tmp_path / "run")
    base = dict(h5=pair_file, logdir=logdir, ladv=0, **TINY)
    train(TrainConfig.from_settings(**base, maxiter=3, precision="mixed_float16"), verbose=0)
    train(TrainConfig.from_settings(**base, maxiter=6, precision="float32"), verbose=0)
    run = RunDir(logdir)
    assert run.metrics()["iteration"] == 6
    assert run.load_config().run.precision == "float32"
    assert np.isfinite(run.metrics()["psnr"])
