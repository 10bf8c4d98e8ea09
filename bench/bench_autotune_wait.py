"""How long a Keras ``fit`` call waits at its end for tf.data's tuning thread.

    python bench/bench_autotune_wait.py [--steps 10 20 35 70] [--rounds 2]

A model whose train step is a fixed amount of matrix work is fitted for ``--steps``
steps on an endless in-memory dataset, with tf.data's autotuner on (TensorFlow's
default) and off (`tomogan_tf.data.pipeline.loaded`'s setting), alternately, in one
process. Printed per call: the wall time of ``fit``, the time its last step ended (a
callback), and the wait between the two. With the autotuner on, the iterator's
destructor waits for the tuning thread's next wake-up, which comes 10 ms, then 20,
40, ... ms (doubling up to a minute) after the iterator was made; so ``fit`` returns at
10 x (2^n - 1) ms. The reference is the same call with the autotuner off.
"""

from __future__ import annotations

import argparse
import os
import time

import keras
import numpy as np
import tensorflow as tf

WORK = tf.random.stateless_normal((700, 700), seed=(0, 0))


class FixedWork(keras.Model):
    """A train step of about 30 ms on 2 cores, whatever the data."""

    def __init__(self) -> None:
        super().__init__()
        self.dense = keras.layers.Dense(1)

    def train_step(self, data):
        def body(i, a):
            return i + 1, tf.tanh(a @ a / 700.0)

        _, a = tf.while_loop(lambda i, a: i < 10, body, (0, WORK))
        return {"work": tf.reduce_sum(a) + tf.reduce_sum(self.dense(data))}


class LastStep(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None) -> None:
        self.ended = time.perf_counter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", nargs="+", type=int, default=[10, 20, 35, 70])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    model = FixedWork()
    model.compile()
    batch = np.zeros((4, 8), np.float32)
    print("| autotune | steps | last step ends, s | fit returns, s | wait, s |")
    print("|---|---|---|---|---|")
    for _ in range(args.rounds):
        for autotune in (True, False):
            options = tf.data.Options()
            options.autotune.enabled = autotune
            data = tf.data.Dataset.from_tensors(batch).repeat().with_options(options)
            model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # traced
            for steps in args.steps:
                clock = LastStep()
                start = time.perf_counter()
                model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
                end = time.perf_counter()
                last, total = clock.ended - start, end - start
                print(f"| {'on' if autotune else 'off'} | {steps} | {last:.3f} | {total:.3f}"
                      f" | {total - last:.3f} |", flush=True)  # fmt: skip
    os._exit(0)  # a tf.data thread can hold the interpreter's exit


if __name__ == "__main__":
    main()
