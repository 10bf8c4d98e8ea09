"""Training on several devices and machines: tf.distribute around the one train step.

``--strategy`` picks how `GANTrainer.train_step` runs:

* ``none``: on one device, driven by Keras' ``fit`` (`tomogan_tf.training.fitting`);
* ``mirrored``: `tf.distribute.MirroredStrategy` over this machine's GPUs (or, with
  none, its logical CPU devices when more than one is configured), one replica each;
* ``multiworker``: `tf.distribute.MultiWorkerMirroredStrategy` over the processes of
  the cluster ``TF_CONFIG`` describes (one per node, each with its GPUs);
* ``auto``: multiworker under a ``TF_CONFIG`` of several workers, else mirrored with
  more than one GPU, else none.

Under both strategies the same train step runs in the loop of `fit_distributed`, not
in ``fit``: Keras 3's ``fit`` under ``MultiWorkerMirroredStrategy`` has been broken
since TF 2.16 (keras-team/keras#20585; README, "Scaling out", says what we measured
with the pinned versions), and one loop for both strategies keeps them alike.

What a distributed run does:

* ``--mbsz`` is the global batch: each of the R replicas trains on its ``mbsz / R``
  share of every batch (`tomogan_tf.data.pipeline.patch_dataset` ``replicas``), the
  very patches one device would, so a step on R devices is a step on one, and the
  learning rate needs no scaling. Growing ``--mbsz`` with R is the user's choice (then
  scale ``--lr_g`` as for any larger batch).
* The losses are means over each replica's share; the trainer divides them by R
  before the gradients, which the optimizer sums over replicas
  (`tomogan_tf.training.trainer`).
* Each worker reads only its replicas' samples: no patch is read twice.
* The chief (task ``chief``, or worker 0) alone validates, writes TensorBoard logs, the
  models and the run's checkpoints, and holds the run directory's lock; the other
  workers write their part of each checkpoint into a temporary folder and delete it
  (a checkpoint of mirrored variables is a collective operation).
* A restarted job (after a worker died, its peers stop with an error) resumes from
  the chief's newest checkpoint, which every worker reads: the run directory must be
  on a file system all workers see.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tomogan_tf.choices import STRATEGIES
from tomogan_tf.errors import InputError, WorkerLost

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

    from tomogan_tf.training.trainer import GANTrainer


@dataclass(frozen=True)
class Role:
    """This process's place in a ``TF_CONFIG`` cluster (one worker of one without it)."""

    task_type: str = "worker"
    index: int = 0
    workers: int = 1  # chief and workers
    has_chief: bool = False  # the cluster names a "chief" task

    @property
    def is_chief(self) -> bool:
        """The chief: task ``chief``, or worker 0 of a cluster without one."""
        if self.task_type == "chief":
            return True
        return self.task_type == "worker" and self.index == 0 and not self.has_chief


def cluster_role(environ: os._Environ | dict = os.environ) -> Role:
    """The `Role` ``TF_CONFIG`` gives this process; TensorFlow-free.

    Raises `InputError` for a ``TF_CONFIG`` that is not the JSON TensorFlow reads.
    """
    text = environ.get("TF_CONFIG")
    if not text:
        return Role()
    try:
        spec = json.loads(text)
        cluster, task = spec["cluster"], spec["task"]
        task_type, index = str(task["type"]), int(task["index"])
        workers = len(cluster.get("chief", [])) + len(cluster.get("worker", []))
        members = cluster[task_type]
    except (ValueError, KeyError, TypeError) as err:
        raise InputError(
            None,
            f"TF_CONFIG is not a cluster spec ({type(err).__name__}: {err}); expected"
            ' {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker",'
            ' "index": 0}}',
        ) from None
    if not 0 <= index < len(members):
        raise InputError(
            None, f"TF_CONFIG: task {task_type} {index} is not in its cluster's {task_type} list"
        )
    return Role(task_type, index, workers, has_chief=bool(cluster.get("chief")))


def local_cluster(workers: int) -> list[str]:
    """``TF_CONFIG`` values of a cluster of ``workers`` processes on this machine, on
    localhost ports free a moment ago: to try a multi-worker job on one computer (the
    tests and ``bench/multiworker_fit.py`` do)."""
    import socket

    sockets = [socket.socket() for _ in range(workers)]
    try:
        for s in sockets:
            s.bind(("localhost", 0))
        hosts = [f"localhost:{s.getsockname()[1]}" for s in sockets]
    finally:
        for s in sockets:
            s.close()
    return [
        json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})
        for i in range(workers)
    ]


def resolve_strategy(name: str, role: Role) -> str:
    """The strategy ``name`` (one of `STRATEGIES`) comes to on this machine."""
    check_strategy(name, role)
    if name != "auto":
        return name
    if role.workers > 1:
        return "multiworker"
    import tensorflow as tf

    return "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "none"


def check_strategy(name: str, role: Role) -> None:
    """Refuse a strategy this process cannot take (TensorFlow-free, before the data)."""
    if name not in STRATEGIES:
        raise InputError(None, f"--strategy must be one of {', '.join(STRATEGIES)}")
    if name == "multiworker" and role.workers < 2:
        raise InputError(
            None,
            "--strategy multiworker needs TF_CONFIG describing a cluster of several"
            " workers (README, 'Scaling out'); it is unset or lists one",
        )


def make_strategy(kind: str) -> tf.distribute.Strategy | None:
    """The `tf.distribute.Strategy` of a resolved ``kind`` (None for ``none``).

    Must run before TensorFlow executes anything: a multiworker strategy configures
    the runtime's collective operations. Collective operations wait for the other
    workers as long as it takes; TensorFlow's health check ends them when one dies.

    One strategy of each kind per process, made once and reused (a second training or
    denoiser in a notebook gets the same one): a new strategy would number its
    collective operations from the start again, and TensorFlow refuses a number it has
    seen with another shape.
    """
    import tensorflow as tf

    if kind == "none":
        return None
    if kind not in _STRATEGIES:
        if kind == "multiworker":
            made = tf.distribute.MultiWorkerMirroredStrategy()
        else:
            gpus = tf.config.list_logical_devices("GPU")
            devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
            made = tf.distribute.MirroredStrategy(devices=devices)
        _STRATEGIES[kind] = made
    return _STRATEGIES[kind]


_STRATEGIES: dict[str, Any] = {}  # kind -> the process's strategy (`make_strategy`)


def replica_datasets(
    strategy: tf.distribute.Strategy, make: Callable[[tuple[tuple[int, ...], int]], Any]
) -> tf.distribute.DistributedDataset:
    """One input pipeline per worker: ``make((replica ids, replica count))`` builds the
    stream of this worker's replicas (`tomogan_tf.data.pipeline.patch_dataset`)."""

    def per_worker(context: tf.distribute.InputContext):
        local = context.num_replicas_in_sync // context.num_input_pipelines
        ids = tuple(context.input_pipeline_id * local + k for k in range(local))
        return make((ids, context.num_replicas_in_sync))

    return strategy.distribute_datasets_from_function(per_worker)


def validate(figures: Callable, val_data: tf.data.Dataset) -> dict[str, float]:
    """The validation figures (``figures``: `GANTrainer.validation_figures`, compiled)
    over ``val_data`` as ``val_*`` logs, computed by this process alone, outside the
    replicas (on its copy of the weights).

    Keras metrics are not used: under a strategy their variables sum over the replicas
    (of every worker) when read, which the chief cannot do on its own.
    """
    import numpy as np

    values: dict[str, list] = {}
    for batch in val_data:
        for name, value in figures(batch).items():
            values.setdefault(name, []).append(np.ravel(value.numpy()))
    return {f"val_{name}": float(np.mean(np.concatenate(v))) for name, v in values.items()}


@contextlib.contextmanager
def scratch_directory() -> Iterator[str]:
    """A temporary folder, removed afterwards: where a non-chief worker's share of a
    checkpoint goes."""
    path = tempfile.mkdtemp(prefix="tomogan_worker_")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def fit_distributed(
    trainer: GANTrainer,
    strategy: tf.distribute.Strategy,
    role: Role,
    patches: tf.distribute.DistributedDataset,
    val_data: tf.data.Dataset,
    callbacks: Sequence[keras.callbacks.Callback],
    checkpoint: tf.train.Checkpoint,
    *,
    start: int,
    maxiter: int,
    val_every: int,
    log_every: int,
    checkpoint_dir: str,
    verbose: int = 1,
) -> None:
    """Train from iteration ``start`` to ``maxiter``: the train step on every replica,
    and every ``val_every`` iterations (and at the end) a validation and a checkpoint.

    ``callbacks`` (the run's checkpoint and TensorBoard writers) run on the chief only,
    called as ``fit`` calls them; the other workers only take part in the checkpoint.
    """
    import keras
    import tensorflow as tf

    steps: dict[tuple[bool, ...], Callable] = {}

    def step_for(phase: tuple[bool, ...]) -> Callable:
        """The compiled step of one schedule phase (train the generator, with the
        adversarial term, train the critic): a few fixed graphs, chosen in Python,
        because a replica sync may not sit inside a `tf.cond`."""
        if phase not in steps:

            def replica_step(data):
                logs = trainer.train_step(data, phase=phase)
                counts = {k: tf.identity(t.count.value) for k, t in trainer.trackers.items()}
                return logs, counts

            @tf.function
            def step(iterator):
                # Each replica's trackers average its own share; the figures are their
                # means, and a term no replica has run yet (the critic's in its warm-up)
                # is left out.
                logs, counts = strategy.run(replica_step, args=(next(iterator),))
                mean = {k: strategy.reduce("MEAN", v, axis=None) for k, v in logs.items()}
                return mean, {k: strategy.reduce("SUM", v, axis=None) for k, v in counts.items()}

            steps[phase] = step
        return steps[phase]

    zero = zeroing(strategy, trainer.trackers)
    figures = tf.function(trainer.validation_figures)
    chief = role.is_chief
    callbacks = list(callbacks) if chief else []
    for callback in callbacks:
        callback.set_model(trainer)
    epochs = -(-maxiter // val_every)
    progress = None
    iterator = iter(patches)
    iteration = start
    while iteration < maxiter:
        epoch = iteration // val_every
        if chief and verbose == 1 and progress is None:
            print(f"Epoch {epoch + 1}/{epochs}", flush=True)
            progress = keras.utils.Progbar(min(val_every, maxiter - epoch * val_every))
        phase = tuple(bool(p) for p in trainer.phase(tf.constant(iteration, tf.int64)))
        try:
            means, counts = step_for(phase)(iterator)
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as err:
            raise worker_lost(err, iteration, checkpoint_dir) from None
        logs = {k: float(v) for k, v in means.items() if float(counts[k]) > 0}
        iteration = int(trainer.iteration.numpy())
        for callback in callbacks:
            callback.on_train_batch_end(iteration, logs)
        if iteration % log_every == 0:  # the TensorBoard points: means since the last
            zero()
        if progress is not None:
            progress.update(iteration - epoch * val_every, list(logs.items()))
        if iteration % val_every and iteration < maxiter:
            continue
        if chief:
            logs.update(validate(figures, val_data))
            for callback in callbacks:  # RunCheckpoint saves the checkpoint
                callback.on_epoch_end(epoch, logs)
            if verbose == 2:
                line = " - ".join(f"{k}: {v:.4g}" for k, v in logs.items())
                print(f"iteration {iteration}/{maxiter} - {line}", flush=True)
        else:
            with scratch_directory() as scratch:
                checkpoint.write(os.path.join(scratch, "ckpt"))
        progress = None
        zero()  # as fit() does at each epoch


def zeroing(strategy: tf.distribute.Strategy, trackers: dict[str, keras.metrics.Metric]):
    """A function zeroing the trackers on this worker's replicas. Every worker calls it
    at the same steps, so the figures reduced over the replicas stay means over one
    span; in the replicas' own context, as zeroing them outside it reads them back,
    over all workers."""
    import tensorflow as tf

    @tf.function
    def zero():
        def on_replica():
            for tracker in trackers.values():
                tracker.reset_state()

        strategy.run(on_replica)

    return zero


def worker_lost(err: Exception, iteration: int, checkpoint_dir: str) -> WorkerLost:
    """The one-line error of a step the other workers did not finish."""
    import tensorflow as tf

    newest = tf.train.latest_checkpoint(checkpoint_dir)
    resume = f"from {newest}" if newest else "from the start (no checkpoint yet)"
    message = str(getattr(err, "message", err))
    unhealthy = re.search(r"unhealthy[^\n]*\n\s*(\S+)", message)
    who = f" ({unhealthy.group(1)})" if unhealthy else ""
    return WorkerLost(
        f"after iteration {iteration} a worker of the job{who} stopped or cannot be"
        f" reached ({type(err).__name__}); start every worker again with the same command"
        f" to resume {resume}"
    )
