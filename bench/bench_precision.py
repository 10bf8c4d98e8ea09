"""Inference speed of each model family at each precision, against float32 eager.

    python bench/bench_precision.py [--families tomogan adl idgan adl3d] [--sizes 512 1024 2048]
                                    [--cubes 32 64] [--batch 1] [--repeats 3] [--xla]

For every family and image side (3-D families: cube side), times one forward pass of a
batch of random images (median of ``--repeats`` after a warm-up) in: float32 eager (the
reference, a plain ``model(x)`` call), float32 under ``tf.function`` (with ``--xla``
also compiled by XLA), and each mixed policy under ``tf.function`` (the weights cloned
by `tomogan_tf.utils.precision.with_precision`, which is what ``--precision`` does).
Prints Mpix/s (3-D: Mvoxel/s) and the ratio to the reference of the same run, and
the largest output difference from float32 (relative to the output's range). Random
weights: speed does not depend on them; the quality a precision costs on trained
models is `bench/precision_quality.py`'s business.
"""

from __future__ import annotations

import argparse
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from tomogan_tf import build_generator
from tomogan_tf.utils.precision import cpu_has_native_bf16, with_precision


def timed(fn, x, repeats: int) -> float:
    fn(x)  # warm-up (traces a tf.function)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        np.asarray(fn(x))
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def compiled(model: keras.Model):
    return tf.function(lambda v: model(v, training=False))


OUT_OF_MEMORY = (tf.errors.ResourceExhaustedError, MemoryError)


def attempt(fn, x, repeats: int) -> float | None:
    """`timed`, or None where the pass runs out of memory (a 2048^2 image through IDGAN's
    128-channel full-resolution layers needs single 2 GiB tensors)."""
    try:
        return timed(fn, x, repeats)
    except OUT_OF_MEMORY:
        return None


def cell(mpix: float, seconds: float | None, reference: float | None) -> str:
    if seconds is None:
        return " out of memory |"
    ratio = f" ({reference / seconds:.2f}x)" if reference else ""
    return f" {rate(mpix / seconds)}{ratio} |"


def rate(mega_per_s: float) -> str:
    """Three significant figures: the 3-D families run at thousandths of a Mvoxel/s."""
    return f"{mega_per_s:.3g} M/s"


def full_resolution(generator: keras.Model) -> keras.Model:
    if len(generator.outputs) > 1:  # ADL: the finest output only, as inference runs it
        return keras.Model(generator.inputs, generator.outputs[0])
    return generator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["tomogan", "adl", "idgan", "adl3d"])
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024, 2048])
    parser.add_argument("--cubes", nargs="+", type=int, default=[32, 64], help="3-D families.")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--policies", nargs="+", default=["mixed_bfloat16"])
    parser.add_argument("--xla", action="store_true", help="also float32 with jit_compile=True")
    args = parser.parse_args()
    xla = ["float32 XLA"] if args.xla else []
    native = cpu_has_native_bf16()
    print(f"TF {tf.__version__}, Keras {keras.__version__}, native bf16 CPU: {native}")
    print("| family | size | float32 eager (reference) | float32 tf.function |"
          + "".join(f" {p} |" for p in xla + args.policies) + " max diff |")  # fmt: skip
    print("|---|---|---|---|" + "---|" * len(xla + args.policies) + "---|")
    for family in args.families:
        keras.utils.set_random_seed(0)
        net = full_resolution(build_generator(family))
        channels = int(net.input_shape[-1])
        dims = len(net.input_shape) - 2
        for size in args.sizes if dims == 2 else args.cubes:
            shape = (args.batch, *(size,) * dims, channels)
            x = tf.constant(np.random.default_rng(0).random(shape, np.float32))
            mpix = float(np.prod(shape[:-1])) / 1e6  # Mvoxel/s for volumes
            eager = attempt(lambda v, n=net: n(v, training=False), x, args.repeats)
            graph_fn = compiled(net)
            runs = [graph_fn]
            if args.xla:
                runs.append(tf.function(graph_fn.python_function, jit_compile=True))
            mixed = [compiled(with_precision(net, p)) for p in args.policies]
            cells = [cell(mpix, eager, eager)]
            cells += [cell(mpix, attempt(fn, x, args.repeats), eager) for fn in runs + mixed]
            diffs = []
            try:
                reference = graph_fn(x).numpy()
                for fn in mixed:
                    diffs.append(
                        f"{np.abs(fn(x).numpy() - reference).max() / np.ptp(reference):.1e}"
                    )
            except OUT_OF_MEMORY:
                diffs.append("out of memory")
            print(
                f"| {family} | {size}{'^3' * (dims == 3)} |" + "".join(cells)
                + f" {', '.join(diffs)} |",
                flush=True,
            )  # fmt: skip


if __name__ == "__main__":
    main()
