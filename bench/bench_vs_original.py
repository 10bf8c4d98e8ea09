"""A training iteration of tomogan_tf against the original TomoGAN TF2 loop, same machine, same run.

    python bench/bench_vs_original.py --original ../shared/anchors/tomogan_tf2_loop/main-gan.py
    python bench/bench_vs_original.py --mbsz 4 --psz 128 ...        # a CPU-sized setting

The original (its public code with the few shims TF 2.21 needs, run outside the
package; see the anchor's README) trains on random in-memory batches (``-synthetic 1``);
so does the package here, through its real `build_trainer` (networks, losses, precision,
optimizers) and Keras' compiled ``train_step``. Both use VGG19 with random weights
(ImageNet's cannot be downloaded here; the FLOPs are the same), one generator and two
critic steps an iteration, depth 1. Each configuration runs in its own process, and
after ``--warmup`` iterations (tracing) the median of ``--iterations`` is reported with
the process's peak resident memory. The original computes its VGG features in NumPy, so
no gradient flows from them; every package row back-propagates through VGG19.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ANCHOR = os.path.join(ROOT, "..", "shared", "anchors", "tomogan_tf2_loop", "main-gan.py")

# name: (TrainConfig settings, precision)
PACKAGE = {
    "bce+vgg": dict(gan_loss="bce", lperc=2.0, ladv=20.0, lmse=0.5),
    "wgan-gp+vgg (the default losses)": dict(),
    "bce, no perceptual term": dict(gan_loss="bce", lperc=0.0, ladv=20.0, lmse=0.5),
}
PRECISIONS = ("float32", "mixed_bfloat16")


def run_original(script: str, mbsz: int, psz: int, iterations: int, warmup: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "bench.json")
        command = [
            sys.executable,
            os.path.abspath(script),
            "-synthetic",
            "1",
            "-dsfn",
            "none",
            "-mbsz",
            str(mbsz),
            "-psz",
            str(psz),
            "-depth",
            "1",
            "-maxiter",
            str(warmup + iterations),
            "-expName",
            "orig",
            "-print",
            "0",
            "-bench_json",
            out,
        ]
        done = subprocess.run(command, cwd=tmp, capture_output=True, text=True)
        if done.returncode != 0 or not os.path.exists(out):
            sys.exit(f"the original loop failed:\n{done.stderr[-3000:]}")
        with open(out) as f:
            figures = json.load(f)
    times = [it["gan"] for it in figures["iterations"][warmup:]]
    return {"seconds": statistics.median(times), "peak_mib": figures["ru_maxrss_mib"]}


def run_package(
    settings: dict, precision: str, mbsz: int, psz: int, iterations: int, warmup: int
) -> dict:
    import resource

    import keras
    import numpy as np
    import tensorflow as tf

    from tomogan_tf.training import TrainConfig, build_trainer
    from tomogan_tf.utils.graph import tune_graph_optimizer

    tune_graph_optimizer()  # as the tools do
    with tempfile.TemporaryDirectory() as tmp:
        weights = os.path.join(tmp, "vgg19_random.weights.h5")
        keras.applications.VGG19(include_top=False, weights=None).save_weights(weights)
        config = TrainConfig.from_settings(
            h5="unused.h5",
            psz=psz,
            mbsz=mbsz,
            depth=1,
            vgg_weights=weights,
            precision=precision,
            **settings,
        ).validate()
        trainer = build_trainer(config)
    rng = np.random.default_rng(0)
    group = trainer.group_size
    noisy = rng.random((group, mbsz, psz, psz, 1), dtype=np.float32)
    clean = rng.random((group, mbsz, psz, psz, 1), dtype=np.float32)
    data = tf.data.Dataset.from_tensors((noisy, clean)).repeat()
    clock = StepClock()
    # One fit call, each iteration timed by a callback, as `tomogan_tf.train` runs it: a
    # fit call per iteration took exact powers of two times 10 ms here (RESULTS.md).
    trainer.fit(
        data, steps_per_epoch=warmup + iterations, epochs=1, verbose=0, shuffle=False,
        callbacks=[clock],
    )  # fmt: skip
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": statistics.median(clock.seconds[warmup:]), "peak_mib": peak}


def StepClock():
    """A Keras callback that keeps each training step's wall time (begin to end)."""
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_train_batch_begin(self, batch, logs=None) -> None:
            self._start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None) -> None:
            self.seconds.append(time.perf_counter() - self._start)

    return Clock()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--original", default=ANCHOR, help="the anchor's main-gan.py")
    parser.add_argument("--mbsz", type=int, default=16)
    parser.add_argument("--psz", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--precisions", nargs="+", default=list(PRECISIONS))
    parser.add_argument("--configs", nargs="+", default=list(PACKAGE))
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "PRECISION"))
    args = parser.parse_args()
    shape = dict(mbsz=args.mbsz, psz=args.psz, iterations=args.iterations, warmup=args.warmup)
    if args.child:
        name, precision = args.child
        print("RESULT " + json.dumps(run_package(PACKAGE[name], precision, **shape)))
        return
    print(
        f"batch {args.mbsz}, patch {args.psz}, depth 1, 1 generator + 2 critic steps;"
        f" median of {args.iterations} after {args.warmup} warm-up"
    )
    original = run_original(args.original, **shape)
    print("| | s / iteration | original / this | peak MiB |\n|---|---|---|---|")
    print(
        f"| original: BCE, VGG19 features in NumPy (no gradient) | {original['seconds']:.2f}"
        f" | 1.00 | {original['peak_mib']:.0f} |"
    )
    for name in args.configs:
        for precision in args.precisions:
            command = [
                sys.executable,
                __file__,
                "--child",
                name,
                precision,
                "--mbsz",
                str(args.mbsz),
                "--psz",
                str(args.psz),
                "--iterations",
                str(args.iterations),
                "--warmup",
                str(args.warmup),
            ]
            done = subprocess.run(
                command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT}
            )
            line = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
            if not line:
                sys.exit(f"{name} {precision} failed:\n{done.stderr[-3000:]}")
            got = json.loads(line[0][7:])
            ratio = original["seconds"] / got["seconds"]
            print(
                f"| tomogan_tf: {name}, {precision} | {got['seconds']:.2f} | {ratio:.2f}"
                f" | {got['peak_mib']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
