"""Time and peak memory of ``python -m tomogan_tf.denoise`` on large inputs.

    python bench/bench_denoise.py [--model M] [--slices 300] [--size 1024]

Writes, in a temporary folder, one 3000x2500 image (.npy) and a stack of --slices
images of --size x --size (HDF5), denoises each in a fresh process with the given
model (default: the shipped one), and prints wall time, megapixels per second and
the process's peak resident memory. The reference is a single --size image denoised
in the same way, in the same run: the ratios show how time scales with pixels and
that memory stays bounded (tiles and slice batches) however large the input.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np


def run_denoise(args: list[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one denoise process.

    Its stderr goes to a temporary file rather than a pipe, so a chatty process cannot
    block on a full pipe while we wait for it.
    """
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tomogan_tf.denoise", *args],
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        elapsed = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) != 0:
            log.seek(0)
            raise SystemExit(f"denoise failed: {log.read().decode()[-4000:]}")
    return elapsed, usage.ru_maxrss / 1024


def phantom_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Smooth structure plus noise, in attenuation-like units (1/mm)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.02 + 0.005 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
    return (base + 0.001 * rng.standard_normal((height, width))).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model")
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    model = ["--model", args.model] if args.model else []
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        reference = os.path.join(tmp, "one.npy")
        np.save(reference, phantom_like(rng, args.size, args.size))
        image = os.path.join(tmp, "image.npy")
        np.save(image, phantom_like(rng, 3000, 2500))
        stack = os.path.join(tmp, "stack.h5")
        with h5py.File(stack, "w") as f:
            dset = f.create_dataset(
                "test_ns",
                (args.slices, args.size, args.size),
                np.float32,
                chunks=(1, args.size, args.size),
            )
            for i in range(args.slices):
                dset[i] = phantom_like(rng, args.size, args.size)
        runs = [
            (f"reference: 1 image {args.size}x{args.size}", reference, args.size**2),
            ("1 image 3000x2500 (tiled)", image, 3000 * 2500),
            (f"stack {args.slices}x{args.size}x{args.size}", stack, args.slices * args.size**2),
        ]
        ref_rate = ref_mem = None
        for label, path, pixels in runs:
            out = os.path.join(tmp, "out" + os.path.splitext(path)[1])
            seconds, peak = run_denoise([*model, "--input", path, "--output", out])
            os.remove(out)
            rate = pixels / 1e6 / seconds
            ref_rate, ref_mem = ref_rate or rate, ref_mem or peak
            print(
                f"{label:34s} {seconds:8.1f} s {rate:6.2f} Mpx/s (x{rate / ref_rate:4.2f})"
                f"  peak {peak:7.0f} MiB (x{peak / ref_mem:4.2f})",
                flush=True,
            )


if __name__ == "__main__":
    main()
