"""Grappler's graph rewrites on CPU: what they cost at start-up and gain per step.

Each setting runs in its own process (Grappler is a process-wide option), alternating
on / off ``--rounds`` times; every row prints medians and the ratio off / on:

    python bench/bench_grappler.py --families tomogan adl --rounds 2

Measured per family: the first training ``fit`` of 2 iterations (tracing, graph
optimisation and the first steps), the steady seconds per iteration after it (patch
``--psz``, batch ``--mbsz``, the family's default losses without VGG), and a compiled
float32 forward pass (Mpix/s on 2 images of ``--size``).
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


def measure(family: str, grappler: bool, psz: int, mbsz: int, size: int, steps: int) -> dict:
    import keras
    import numpy as np
    import tensorflow as tf

    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not grappler})
    from tomogan_tf.data import Normalizer, StackReader, patch_dataset
    from tomogan_tf.models import build_generator
    from tomogan_tf.training import TrainConfig, build_trainer

    sys.path.insert(0, os.path.join(ROOT, "tests"))
    from helpers import write_pair_file

    keras.utils.set_random_seed(0)
    directory = tempfile.mkdtemp()
    path = write_pair_file(os.path.join(directory, "p.h5"), 8, 2, (max(96, psz), max(96, psz)))
    config = TrainConfig.from_settings(
        h5=path, model=family, psz=psz, mbsz=mbsz, vgg_weights="none", lperc=0.0
    ).validate()
    trainer = build_trainer(config)
    reader = StackReader.open(path, "train_ns", "train_gt", depth=config.model.depth)
    volumes = family == "adl3d"
    data = patch_dataset(
        reader, psz, mbsz, Normalizer(-0.3, 1.6), group=trainer.group_size, volumes=volumes
    )
    start = time.perf_counter()
    trainer.fit(data, steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)
    first = time.perf_counter() - start
    start = time.perf_counter()
    trainer.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    step = (time.perf_counter() - start) / steps

    generator = build_generator(family)
    images = np.random.default_rng(0).random((2, size, size, 1), dtype=np.float32)
    forward = tf.function(lambda x: generator(x, training=False))
    forward(images)  # trace
    start = time.perf_counter()
    tf.nest.flatten(forward(images))[0].numpy()
    mpix = 2 * size * size / 1e6 / (time.perf_counter() - start)
    return {"first_fit_s": first, "step_s": step, "forward_mpix_s": mpix}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["tomogan", "adl"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--psz", type=int, default=64)
    parser.add_argument("--mbsz", type=int, default=4)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--child", nargs=2, metavar=("FAMILY", "GRAPPLER"))
    args = parser.parse_args()
    if args.child:
        family, grappler = args.child[0], args.child[1] == "on"
        figures = measure(family, grappler, args.psz, args.mbsz, args.size, args.steps)
        print("RESULT " + json.dumps(figures))
        return
    for family in args.families:
        runs: dict[str, list[dict]] = {"on": [], "off": []}
        for _ in range(args.rounds):
            for setting in ("on", "off"):
                command = [sys.executable, __file__, "--child", family, setting,
                           "--psz", str(args.psz), "--mbsz", str(args.mbsz),
                           "--size", str(args.size), "--steps", str(args.steps)]  # fmt: skip
                out = subprocess.run(
                    command, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ROOT}
                )
                line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
                if not line:
                    sys.exit(f"{family} {setting} failed:\n{out.stderr[-3000:]}")
                runs[setting].append(json.loads(line[0][7:]))
        for key in ("first_fit_s", "step_s", "forward_mpix_s"):
            on = statistics.median(r[key] for r in runs["on"])
            off = statistics.median(r[key] for r in runs["off"])
            print(f"{family:8s} {key:15s} on {on:8.3f}  off {off:8.3f}  off/on {off / on:.2f}")


if __name__ == "__main__":
    main()
