"""TomoGAN's x2 bilinear upsampling: the resize layer against the stencil it replaced.

    python bench/bench_upsample.py [--shape 4 128 128 64] [--repeats 5]

`BilinearUpsample2x` once spelt out the 0.25/0.75 stencil of a half-pixel-centred
bilinear x2 resize with gathers and concatenations (kept below as the reference, the
same values). Both run here in one process, traced with free batch, H and W as in a
training step or a SavedModel, forward and backward. Printed per way: trace time, ops
in the traced graph, and the median forward+backward time, with ratios to the stencil.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import tensorflow as tf
from keras import ops

from tomogan_tf.models.layers import BilinearUpsample2x
from tomogan_tf.utils.graph import tune_graph_optimizer


def stencil_upsample(x):
    """The layer's former body: each axis doubled by gathers of the clamped neighbours."""

    def axis_x2(x, axis: int):
        first = ops.take(x, ops.convert_to_tensor([0]), axis=axis)
        last = ops.take(x, ops.convert_to_tensor([-1]), axis=axis)
        n = ops.shape(x)[axis]
        previous = ops.concatenate([first, ops.take(x, ops.arange(0, n - 1), axis=axis)], axis)
        following = ops.concatenate([ops.take(x, ops.arange(1, n), axis=axis), last], axis)
        interleaved = ops.stack([0.75 * x + 0.25 * previous, 0.75 * x + 0.25 * following], axis + 1)
        shape = ops.shape(x)
        new_shape = [shape[i] for i in range(4)]
        new_shape[axis] = 2 * shape[axis]
        return ops.reshape(interleaved, new_shape)

    return axis_x2(axis_x2(x, 1), 2)


def forward_backward(upsample):
    def step(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = upsample(x)
            loss = tf.reduce_sum(y * y)
        return tape.gradient(loss, x)

    return step


def measure(upsample, x: tf.Tensor, repeats: int) -> dict[str, float]:
    spec = tf.TensorSpec([None, None, None, x.shape[-1]], tf.float32)
    start = time.perf_counter()
    concrete = tf.function(forward_backward(upsample)).get_concrete_function(spec)
    traced = time.perf_counter() - start
    concrete(x)  # first run
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        concrete(x).numpy()
        times.append(time.perf_counter() - start)
    ops_count = len(concrete.graph.get_operations())
    return {"trace": traced, "ops": ops_count, "step": statistics.median(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=4, default=[4, 128, 128, 64])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tune_graph_optimizer()  # as the tools run
    x = tf.constant(np.random.default_rng(0).random(args.shape, dtype=np.float32))
    layer = BilinearUpsample2x()
    small = x[:1, :13, :7]
    gap = float(tf.reduce_max(tf.abs(layer(small) - stencil_upsample(small))))
    print(f"input {tuple(args.shape)}; largest difference of the two ways: {gap:.2e}")
    # Trace each way once first so that one-time tracing costs fall on neither.
    for upsample in (stencil_upsample, layer):
        measure(upsample, x[:1], 1)
    reference = measure(stencil_upsample, x, args.repeats)
    print(
        f"stencil (gathers): trace {reference['trace']:.3f} s, {reference['ops']} ops,"
        f" forward+backward {reference['step']:.4f} s"
    )
    result = measure(layer, x, args.repeats)
    print(
        f"resize (layer):    trace {result['trace']:.3f} s, {result['ops']} ops,"
        f" forward+backward {result['step']:.4f} s"
        f"  -> trace x{reference['trace'] / result['trace']:.1f},"
        f" step x{reference['step'] / result['step']:.1f} faster"
    )


if __name__ == "__main__":
    main()
