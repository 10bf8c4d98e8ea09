"""Cost of each model family: parameters, multiply-adds per pixel, CPU speed.

    python bench/bench_models.py [--size 256] [--repeats 3]

Multiply-adds are counted from the layers (every convolution and dense layer, at
the resolution it runs at, divided by the input's pixels or voxels), so they do not
depend on the machine. The forward and training-step times are measured here, on a
``size`` x ``size`` image (``size / 4`` cube for 3-D), and printed with their ratio
to TomoGAN's, measured in the same process.
"""

from __future__ import annotations

import argparse
import math
import time

import keras
import numpy as np
import tensorflow as tf

from tomogan_tf.losses import as_outputs
from tomogan_tf.models import FAMILIES, build_generator

TRANSPOSED = (keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose)
CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.Conv3D, *TRANSPOSED)


def multiply_adds_per_pixel(model: keras.Model, shape: tuple[int, ...]) -> float:
    """Multiply-adds of one forward pass per input pixel, for an input of ``shape``.

    A convolution does one window of multiply-adds per output position; a transposed
    convolution scatters one window per input position.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense):
            total += math.prod(layer.kernel.shape)
        elif isinstance(layer, CONVOLUTIONS):
            transposed = isinstance(layer, TRANSPOSED)
            tensor = layer.input if transposed else layer.output
            spatial = keras.Model(model.inputs, tensor).compute_output_shape((1, *shape))
            total += math.prod(spatial[1:-1]) * math.prod(layer.kernel.shape)
    return total / math.prod(shape[:-1])


def seconds(fn, repeats: int) -> float:
    fn()  # trace / warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def time_model(model: keras.Model, x: tf.Tensor, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` seconds of a forward pass and of an Adam training step."""
    forward = tf.function(lambda x: as_outputs(model(x, training=False))[0])
    optimizer = keras.optimizers.Adam(1e-4)
    variables = model.trainable_variables

    @tf.function
    def step(x):
        with tf.GradientTape() as tape:
            # Every output head counts, so every weight gets a gradient.
            outputs = as_outputs(model(x, training=True))
            loss = tf.add_n([tf.reduce_mean(tf.square(y)) for y in outputs])
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables, strict=True))

    return seconds(lambda: forward(x).numpy(), repeats), seconds(lambda: step(x), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for name, family in FAMILIES.items():
        keras.utils.set_random_seed(0)
        model = build_generator(name)
        side = args.size if family.dims == 2 else args.size // 4
        shape = (side,) * family.dims + (1,)
        x = tf.constant(np.random.default_rng(0).random((1, *shape)), tf.float32)
        t_forward, t_step = time_model(model, x, args.repeats)
        pixels = math.prod(shape[:-1])
        rows.append(
            (name, model.count_params(), multiply_adds_per_pixel(model, shape), shape,
             t_forward / pixels * 1e6, t_step / pixels * 1e6)
        )  # fmt: skip
    reference = {r[0]: r for r in rows}["tomogan"]
    print(
        f"{'family':8} {'params':>11} {'MACs/px':>10} {'input':>12} {'fwd us/px':>10}"
        f" {'x tomogan':>9} {'step us/px':>10} {'x tomogan':>9}"
    )
    for name, params, macs, shape, fwd, stp in rows:
        size = "x".join(map(str, shape[:-1]))
        print(
            f"{name:8} {params:>11,} {macs / 1e3:>9.1f}k {size:>12} {fwd:>10.3f}"
            f" {fwd / reference[4]:>9.1f} {stp:>10.3f} {stp / reference[5]:>9.1f}"
        )


if __name__ == "__main__":
    main()
