"""Denoise a stack with the shipped model on one device and mirrored over two logical
CPU devices; print the largest difference (run as a script by test_denoiser.py:
logical devices must be set before TensorFlow starts)."""

from __future__ import annotations

import json
import os

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import numpy as np  # noqa: E402

from tomogan_tf.inference import Denoiser  # noqa: E402

stack = np.random.default_rng(5).uniform(100, 300, (5, 40, 48)).astype(np.float32)
one = Denoiser.load(None, precision="float32", batch_size=5)
two = Denoiser.load(None, precision="float32", strategy="mirrored", batch_size=5)
a, b = one(stack), two(stack)
print(json.dumps({"replicas": two.replicas, "max_difference": float(np.max(np.abs(a - b))),
                  "max_change": float(np.max(np.abs(a - stack)))}))  # fmt: skip
os._exit(0)
