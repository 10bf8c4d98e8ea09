"""Denoising through the whole command line against a float32 eager script, same run.

    python bench/bench_cli.py [--model saved_models/tomogan_ct] [--slices 8] [--size 1024]
                              [--precisions auto float32 mixed_bfloat16]

Writes one HDF5 stack (``--slices`` float32 slices of ``--size`` squared, attenuation-like
values) and denoises it in fresh processes:

- the reference: the plain script a user would write first (h5py in, the model loaded
  with Keras, each slice's percentile window, its neighbours stacked, one eager
  ``model(x)`` call per slice in float32, h5py out);
- ``python -m tomogan_tf.denoise`` at each ``--precisions`` (``auto`` is the default a
  user gets), from start-up to the renamed output.

Every row is whole-process wall time, start-up and file I/O included, with Mpix/s and
its ratio to the reference; the issue's target is the default at 3x the reference.
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))

from bench_denoise import phantom_like  # noqa: E402

KEY = "test_ns"

# The reference, run as its own process: argv = model dir, input, output, dataset.
EAGER_SCRIPT = """
import sys, json, os
import h5py, keras, numpy as np
import tomogan_tf.models.layers  # the custom layers, for loading
model_dir, src, dst, key = sys.argv[1:5]
config = json.load(open(os.path.join(model_dir, "config.json")))
depth, low, high = config["depth"], config["norm_low"], config["norm_high"]
model = keras.models.load_model(os.path.join(model_dir, "generator.keras"), compile=False)
with h5py.File(src, "r") as f:
    stack = f[key][...]
out = np.empty_like(stack)
for i in range(len(stack)):
    picks = np.clip(np.arange(i - depth // 2, i + depth // 2 + 1), 0, len(stack) - 1)
    lo, hi = np.percentile(stack[i], [low, high])
    x = (np.moveaxis(stack[picks], 0, -1)[None] - lo) / (hi - lo)
    y = np.asarray(model(x.astype(np.float32), training=False))[0, ..., 0]
    out[i] = y * (hi - lo) + lo
with h5py.File(dst, "w") as f:
    f[key] = out
"""


def timed(command: list[str], env: dict) -> float:
    """Wall seconds of one process; its output goes to a file, and a failure stops the run."""
    start = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            log.seek(0)
            sys.exit(f"{command[:4]} failed:\n{log.read().decode()[-4000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "saved_models", "tomogan_ct"))
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--precisions", nargs="+", default=["auto", "float32", "mixed_bfloat16"])
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    mpix = args.slices * args.size**2 / 1e6
    env = {**os.environ, "PYTHONPATH": ROOT}
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "stack.h5")
        with h5py.File(src, "w") as f:
            f[KEY] = np.stack([phantom_like(rng, args.size, args.size) for _ in range(args.slices)])
        size = f"{args.size}x{args.size}"
        print(f"{args.slices} slices of {size} ({mpix:.1f} Mpix), model {args.model}")
        print("| run | wall s | Mpix/s | vs reference |\n|---|---|---|---|")
        ref_out = os.path.join(tmp, "ref.h5")
        reference = timed([sys.executable, "-c", EAGER_SCRIPT, args.model, src, ref_out, KEY], env)
        print(f"| float32 eager script (reference) | {reference:.1f} | {mpix / reference:.2f}"
              " | 1.00 |", flush=True)  # fmt: skip
        for precision in args.precisions:
            out = os.path.join(tmp, f"out_{precision}.h5")
            command = [sys.executable, "-m", "tomogan_tf.denoise", "--model", args.model,
                       "--input", src, "--output", out, "--precision", precision]  # fmt: skip
            seconds = timed(command, env)
            label = "default (auto)" if precision == "auto" else precision
            print(f"| `tomogan_tf.denoise`, {label} | {seconds:.1f} | {mpix / seconds:.2f}"
                  f" | {reference / seconds:.2f} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
