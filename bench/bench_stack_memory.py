"""Peak memory of ``python -m tomogan_tf.denoise`` against the length of the stack.

    python bench/bench_stack_memory.py                      # 100 and 2000 slices of 256x256
    python bench/bench_stack_memory.py --lengths 100 500 2000 --outputs .h5 .npy .tif

Each stack (HDF5, float32, contiguous) is denoised in a fresh process by the shipped
model into each output format; the table gives wall time, Mpix/s and the process's
peak resident memory (``ru_maxrss``), and the ratio of that peak to the shortest
stack's, which is the reference of the same run. Streaming should keep it flat.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import h5py
import numpy as np
from bench_denoise import run_denoise  # run as a script: bench/ is on sys.path


def write_stack(path: str, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("test_ns", (n, size, size), np.float32)
        for start in range(0, n, 100):
            k = min(100, n - start)
            d[start : start + k] = rng.random((k, size, size), dtype=np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 2000])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--outputs", nargs="+", default=[".h5", ".npy", ".tif"])
    parser.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="denoise flags")
    args = parser.parse_args()
    print("| output | slices | wall s | Mpix/s | peak MiB | peak / shortest |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in args.outputs:
            reference = None
            for n in sorted(args.lengths):
                path = os.path.join(tmp, f"stack{n}.h5")
                if not os.path.exists(path):
                    write_stack(path, n, args.size)
                out = os.path.join(tmp, f"out{n}{suffix}")
                seconds, peak = run_denoise(["--input", path, "--output", out, *args.extra])
                os.remove(out)
                reference = reference or peak
                mpix = n * args.size**2 / 1e6 / seconds
                print(
                    f"| {suffix} | {n} | {seconds:.1f} | {mpix:.2f} | {peak:.0f} |"
                    f" {peak / reference:.3f} |"
                )


if __name__ == "__main__":
    main()
