"""Does Keras' own ``fit()`` train under MultiWorkerMirroredStrategy with our pinned versions?

    python bench/multiworker_fit.py

keras-team/keras#20585 reports ``fit()`` under ``tf.distribute.MultiWorkerMirroredStrategy``
broken since TF 2.16 (Keras 3). This starts two local workers on localhost ports, each
running TensorFlow's multi-worker tutorial in miniature (a small Dense model, compile,
``fit`` on a dataset, two epochs), and prints what each worker ended with. The package
does not depend on the answer: `tomogan_tf.training.distribute.fit_distributed` runs its
train step under the strategy in its own loop either way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tomogan_tf.training.distribute import local_cluster

TIMEOUT = 300


def worker() -> None:
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    import keras

    x = np.random.default_rng(0).normal(size=(256, 8)).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    data = tf.data.Dataset.from_tensor_slices((x, y)).repeat().batch(32)
    with strategy.scope():
        model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16), keras.layers.Dense(1)])
        model.compile(optimizer="adam", loss="mse")
    history = model.fit(data, epochs=2, steps_per_epoch=5, verbose=0)
    print(f"OK: fit() trained 2 epochs, losses {[round(v, 4) for v in history.history['loss']]}")


def main() -> None:
    import keras
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, Keras {keras.__version__}")
    procs = []
    for tf_config in local_cluster(2):
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", TF_CONFIG=tf_config)
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    start = time.monotonic()
    for index, proc in enumerate(procs):
        try:
            out, _ = proc.communicate(timeout=max(1.0, TIMEOUT - (time.monotonic() - start)))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            out += f"\nno result within {TIMEOUT} s (hung)"
        lines = [line for line in out.splitlines() if line.strip()]
        ok = [line for line in lines if line.startswith("OK:")]
        errors = [line for line in lines if "Error" in line and not line.startswith(" ")]
        verdict = ok[-1] if ok else (errors[-1] if errors else lines[-1] if lines else "no output")
        print(f"worker {index} (exit {proc.returncode}): {verdict}")


if __name__ == "__main__":
    worker() if "--worker" in sys.argv else main()
