"""Graph optimisation by device: Grappler's rewrites off on CPU-only machines.

Measured on the project's 2-core CPU (`bench/bench_grappler.py`, bench/HISTORY.md):
with TensorFlow's graph optimiser (Grappler) off, an ADL training step takes half the
time (2.07 -> 1.03 s at patch 64, batch 4) and its first call 11 s less; TomoGAN's step
is unchanged (4.11 vs 4.10 s at patch 128, batch 8) and its compiled forward pass 10 %
faster. On GPUs Grappler's layout and fusion passes matter, so it stays on there.

The command-line tools call `tune_graph_optimizer` once, after importing TensorFlow.
It changes a process-wide option, so library code never calls it on its own; a
notebook may (``tomogan_tf.utils.graph.tune_graph_optimizer()``).
"""

from __future__ import annotations

import os

# Set to 1 to keep Grappler on a CPU-only machine, 0 to turn it off on a GPU one.
ENVIRONMENT = "TOMOGAN_GRAPPLER"


def tune_graph_optimizer() -> bool:
    """Turn Grappler off unless a GPU is visible (or ``TOMOGAN_GRAPPLER`` says otherwise).

    Returns whether Grappler stays on. Must run before the first `tf.function` runs.
    """
    import tensorflow as tf

    chosen = os.environ.get(ENVIRONMENT, "").strip()
    keep = chosen == "1" if chosen in ("0", "1") else bool(tf.config.list_physical_devices("GPU"))
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": not keep})
    return keep
