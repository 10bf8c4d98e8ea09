"""Training throughput: the HDF5 patch pipeline and one TomoGAN iteration per loss setting.

    python bench/bench_train.py [--h5 demo.h5] [--psz 64] [--mbsz 8] [--steps 30]

Prints patches/s of the streaming pipeline against an in-memory NumPy crop of the same
stack (the reference), and seconds per iteration of each adversarial setting against
MSE-only training (the reference), all measured in this one process. Without --h5 a
small synthetic file is written to a temporary directory first.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time

import h5py
import keras
import numpy as np

from tomogan_tf import build_discriminator, build_generator
from tomogan_tf.data import StackReader, fit_normalizer, open_h5, open_stack, patch_dataset
from tomogan_tf.training import GANTrainer, LossConfig


def stack_shape_and_normalizer(path: str):
    with open_h5(path) as f:
        return f["train_ns"].shape, fit_normalizer(open_stack(f, "train_ns"))


def pipeline_rate(path: str, psz: int, mbsz: int, batches: int) -> tuple[float, float]:
    shape, normalizer = stack_shape_and_normalizer(path)
    with h5py.File(path, "r") as f:
        in_memory = f["train_ns"][...]
    reader = StackReader.open(path, "train_ns", "train_gt", depth=3)
    ds = patch_dataset(reader, psz, mbsz, normalizer, group=3)
    with reader.opened():  # as training reads: the files held open
        return _rates(ds, in_memory, shape, psz, mbsz, batches)


def _rates(ds, in_memory, shape, psz: int, mbsz: int, batches: int) -> tuple[float, float]:
    iterator = iter(ds)
    next(iterator)  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    streamed = batches * 3 * mbsz / (time.perf_counter() - start)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(batches * 3 * mbsz):
        i = int(rng.integers(0, shape[0] - 2))
        y, x = (int(rng.integers(0, s - psz + 1)) for s in shape[1:])
        np.ascontiguousarray(in_memory[i : i + 3, y : y + psz, x : x + psz])
    reference = batches * 3 * mbsz / (time.perf_counter() - start)
    return streamed, reference


def iteration_time(path: str, psz: int, mbsz: int, steps: int, **losses) -> float:
    keras.utils.set_random_seed(0)
    _shape, normalizer = stack_shape_and_normalizer(path)
    d = build_discriminator("tomogan", patch_size=psz)
    trainer = GANTrainer(build_generator("tomogan"), d, losses=LossConfig.for_family(**losses))
    trainer.compile(keras.optimizers.Adam(1e-4), keras.optimizers.Adam(1e-4))
    reader = StackReader.open(path, "train_ns", "train_gt")
    data = patch_dataset(reader, psz, mbsz, normalizer, group=trainer.group_size)
    trainer.fit(data, steps_per_epoch=3, epochs=1, verbose=0, shuffle=False)  # trace
    start = time.perf_counter()
    trainer.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    seconds = (time.perf_counter() - start) / steps
    return seconds


def synthetic_file(directory: str) -> str:
    path = os.path.join(directory, "bench.h5")
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        clean = rng.random((32, 256, 256), dtype=np.float32)
        f["train_gt"] = clean
        f["train_ns"] = clean + 0.1 * rng.standard_normal(clean.shape, dtype=np.float32)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--h5")
    parser.add_argument("--psz", type=int, default=64)
    parser.add_argument("--mbsz", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.h5 or synthetic_file(tmp)
        print(f"file {path}, patch {args.psz}, batch {args.mbsz}, {args.steps} steps")
        streamed, reference = pipeline_rate(path, args.psz, args.mbsz, args.steps)
        print(
            f"pipeline (depth 3, augmented): {streamed:8.0f} patches/s;"
            f" in-memory NumPy crops {reference:8.0f} patches/s; ratio {streamed / reference:.3f}"
        )
        base = iteration_time(path, args.psz, args.mbsz, args.steps, ladv=0, lperc=0)
        print(f"iteration, MSE only (reference): {base:.3f} s")
        for gan_loss in ("wgan-gp", "wgan", "bce"):
            t = iteration_time(path, args.psz, args.mbsz, args.steps, gan_loss=gan_loss, lperc=0)
            print(f"iteration, MSE + {gan_loss:7s} (itg 1, itd 2): {t:.3f} s; ratio {t / base:.2f}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
