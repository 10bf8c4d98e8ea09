"""Numeric precision of a network: float32, or mixed bfloat16 / float16 compute.

Mixed precision keeps every variable in float32 and computes in 16 bits, which is
several times faster where the hardware has native 16-bit units (CPUs with
AVX-512 BF16 or AMX, GPUs of compute capability 8.0+ for bfloat16 and 7.0+ for
float16) and many times slower where it has not. So the choice is made per device
(`resolve`), and a network is switched by cloning it under a Keras dtype policy
with the same weights (`with_precision`): every layer computes in 16 bits except
the ones whose outputs are the network's, which compute (and return) float32, so
images, losses and metrics stay float32 whatever the precision.

float16's narrow range needs loss scaling in training (`loss_scaled`); bfloat16
has float32's range and needs none.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # keras (and TensorFlow) load on first use: flags read PRECISIONS early
    import keras

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
FLOAT32 = "float32"


@dataclass(frozen=True)
class Precision:
    """A resolved choice: the Keras dtype ``policy`` and why it was taken."""

    policy: str
    reason: str

    @property
    def mixed(self) -> bool:
        return self.policy != FLOAT32

    def describe(self) -> str:
        return f"precision {self.policy} ({self.reason})"


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags of ``/proc/cpuinfo`` (empty where there is none)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AVX-512 BF16 or AMX)."""
    return bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})


def gpu_compute_capabilities() -> list[tuple[int, int]]:
    """Compute capability of each visible GPU (empty on a CPU-only machine)."""
    import tensorflow as tf

    out = []
    for gpu in tf.config.list_physical_devices("GPU"):
        capability = tf.config.experimental.get_device_details(gpu).get("compute_capability")
        if capability:
            out.append(tuple(capability))
    return out


# Quality each mixed policy costs the shipped models on the held-out benchmark
# (bench/precision_quality.py: the largest PSNR loss over its rows, in bench/RESULTS.md
# "Quality each precision costs the shipped models"; float16 measured 0.00 there on
# 2026-12-03, 0.01 before). `auto` takes a policy only where it costs at most
# `MAX_QUALITY_LOSS_DB`.
QUALITY_LOSS_DB = {"mixed_bfloat16": 0.07, "mixed_float16": 0.01}
MAX_QUALITY_LOSS_DB = 0.05


def _within_quality(policy: str) -> bool:
    return QUALITY_LOSS_DB.get(policy, float("inf")) <= MAX_QUALITY_LOSS_DB


def resolve(precision: str = "auto") -> Precision:
    """The policy for ``precision``: itself, or for ``"auto"`` the device's best.

    ``auto`` takes a mixed policy only where the device computes it natively (every
    GPU, or the CPU without one: bfloat16 on compute capability 8.0+ and on CPUs with
    AVX-512 BF16 or AMX, float16 on 7.0+) AND it costs the shipped models at most
    0.05 dB PSNR (`QUALITY_LOSS_DB`); float32 otherwise.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return Precision(precision, "as asked")
    gpus = gpu_compute_capabilities()
    if gpus:
        native = ["mixed_bfloat16"] if min(gpus) >= (8, 0) else []
        native += ["mixed_float16"] if min(gpus) >= (7, 0) else []
        device = "GPUs"
    else:
        native = ["mixed_bfloat16"] if cpu_has_native_bf16() else []
        device = "CPU"
    for policy in native:
        if _within_quality(policy):
            return Precision(policy, f"auto: {device} with native {policy[6:]}")
    if native:
        costs = ", ".join(
            f"{p} costs {QUALITY_LOSS_DB[p]:.2f} dB" if p in QUALITY_LOSS_DB else f"{p} unmeasured"
            for p in native
        )
        allowed = f"over the {MAX_QUALITY_LOSS_DB} dB allowed"
        return Precision(FLOAT32, f"auto: {costs} on the shipped model, {allowed}")
    return Precision(FLOAT32, f"auto: {device} without native 16-bit compute")


def with_precision(model: keras.Model, policy: str) -> keras.Model:
    """``model`` cloned under dtype ``policy``, with its weights; output layers stay float32.

    A model already under ``policy`` comes back as it is. The clone shares nothing
    with ``model``: its variables are float32 copies of the same values.
    """
    import keras

    output_layers = {id(t._keras_history[0]) for t in model.outputs}
    current = {
        layer.dtype_policy.name
        for layer in model.layers
        if layer.weights and id(layer) not in output_layers
    }
    if current <= {policy}:
        return model

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if "dtype" in config or hasattr(layer, "dtype_policy"):
            config["dtype"] = FLOAT32 if id(layer) in output_layers else policy
        return layer.__class__.from_config(config)

    cloned = keras.models.clone_model(model, clone_function=clone)
    cloned.set_weights(model.get_weights())
    return cloned


def loss_scaled(optimizer: keras.optimizers.Optimizer, policy: str):
    """``optimizer`` wrapped for dynamic loss scaling under float16; as it is otherwise."""
    import keras

    if policy == "mixed_float16" and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def unscaled(optimizer: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """The optimizer whose state a checkpoint keeps: a loss-scaling one's inner optimizer.

    Checkpoints then have one structure whatever the precision, so a run can resume
    under another (the loss scale is found again within a few steps).
    """
    return getattr(optimizer, "inner_optimizer", optimizer)
