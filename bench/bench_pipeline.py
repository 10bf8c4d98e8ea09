"""How fast the HDF5 patch pipeline delivers, against what a training step consumes.

    python bench/bench_pipeline.py                       # 256x256 patches, batch 16, depth 3
    python bench/bench_pipeline.py --psz 64 --mbsz 8     # a CPU-sized setting

A synthetic pair file (``--slices`` noisy/clean 1024x1024 float32 slices) is written
three ways: contiguous (h5py's default, TomoGAN's files), chunked by slice (both read
with os.pread by `DirectReader`, without a lock), and chunked with gzip (read through
h5py under its lock). For each, `patch_dataset` streams training elements (TomoGAN's
defaults: 3 batches an iteration, neighbours of depth 3, per-image normalisation,
dihedral augmentation) and the figure is patches/s, set against two references:

- the demand of a fast GPU at the TomoGAN defaults: 10 iterations/s, so
  10 x 3 x batch patches/s (the issue asks for 5x that);
- the same random crops copied out of the stack in memory with NumPy, in one thread
  (what a reader could do with the whole file in RAM and no other work).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import h5py
import numpy as np

from tomogan_tf.data import StackReader, patch_dataset
from tomogan_tf.data.normalization import PerImageNormalization

GPU_ITERATIONS_PER_S = 10
GROUP = 3  # one generator and two critic batches per iteration


def write_file(path: str, slices: int, size: int, layout: str) -> None:
    rng = np.random.default_rng(0)
    options: dict = {}
    if layout != "contiguous":
        options["chunks"] = (1, size, size)
    if layout == "gzip":
        options["compression"] = "gzip"
        options["compression_opts"] = 1
    with h5py.File(path, "w") as f:
        for name in ("train_gt", "train_ns"):
            d = f.create_dataset(name, (slices, size, size), np.float32, **options)
            for i in range(slices):
                clean = rng.random((size, size), dtype=np.float32)
                d[i] = clean if name == "train_gt" else clean + 0.1 * rng.random((size, size))


def pipeline_rate(path: str, psz: int, mbsz: int, batches: int, depth: int) -> tuple[float, float]:
    """Patches/s, and the cores kept busy meanwhile (process CPU time / wall time)."""
    reader = StackReader.open(path, "train_ns", "train_gt", depth=depth)
    ds = patch_dataset(reader, psz, mbsz, PerImageNormalization(), group=GROUP)
    with reader.opened():
        iterator = iter(ds)
        for _ in range(3):  # warm-up: tracing, and every slice's window computed
            next(iterator)
        start, cpu = time.perf_counter(), time.process_time()
        for _ in range(batches):
            next(iterator)
        wall = time.perf_counter() - start
        return batches * GROUP * mbsz / wall, (time.process_time() - cpu) / wall


def numpy_rate(path: str, psz: int, count: int, depth: int) -> float:
    with h5py.File(path, "r") as f:
        noisy, clean = f["train_ns"][...], f["train_gt"][...]
    rng = np.random.default_rng(0)
    n, height, width = noisy.shape
    start = time.perf_counter()
    for _ in range(count):
        i = int(rng.integers(0, n - depth + 1))
        y, x = int(rng.integers(0, height - psz + 1)), int(rng.integers(0, width - psz + 1))
        np.ascontiguousarray(noisy[i : i + depth, y : y + psz, x : x + psz])
        np.ascontiguousarray(clean[i + depth // 2, y : y + psz, x : x + psz])
    return count / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--psz", type=int, default=256)
    parser.add_argument("--mbsz", type=int, default=16)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--slices", type=int, default=64)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--batches", type=int, default=40, help="Iterations' worth timed.")
    parser.add_argument("--layouts", nargs="+", default=["contiguous", "chunked", "gzip"])
    args = parser.parse_args()
    demand = GPU_ITERATIONS_PER_S * GROUP * args.mbsz
    print(
        f"patch {args.psz}, batch {args.mbsz} x {GROUP} per iteration, depth {args.depth};"
        f" {args.slices} slices of {args.size}x{args.size}; cores: {os.cpu_count()}"
    )
    print(f"demand of a GPU at {GPU_ITERATIONS_PER_S} iterations/s: {demand} patches/s")
    with tempfile.TemporaryDirectory() as tmp:
        reference = None
        for layout in args.layouts:
            path = os.path.join(tmp, f"{layout}.h5")
            write_file(path, args.slices, args.size, layout)
            if reference is None:
                reference = numpy_rate(path, args.psz, args.batches * GROUP * args.mbsz, args.depth)
                print(f"in-memory NumPy crops, one thread: {reference:8.0f} patches/s")
            rate, busy = pipeline_rate(path, args.psz, args.mbsz, args.batches, args.depth)
            print(
                f"pipeline, {layout:10s}: {rate:8.0f} patches/s; {rate / demand:5.2f}x the"
                f" GPU's demand; {rate / reference:5.2f}x in-memory NumPy;"
                f" {busy:.2f} cores busy, {1e3 * busy / rate:.2f} CPU ms a patch"
            )
            os.remove(path)


if __name__ == "__main__":
    main()
