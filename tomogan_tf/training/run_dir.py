"""The run directory: one place that knows its layout, its lock and its checkpoints.

::

    config.json            every setting and what was fitted from the data
    checkpoints/           weights, optimizer states and iteration count (the last few)
    logs/                  TensorBoard: losses, validation PSNR/SSIM, image panels
    generator_last.keras   generator after the latest validation
    generator_best.keras   generator with the best validation PSNR so far
    metrics.json           validation figures of the best generator
    .lock                  held by the training that is writing the run

Training writes a run through `RunDir` and inference reads it through the same type,
so no other module spells these names. Every file is written under a temporary name
and renamed when complete; a training holds `lock` for as long as it writes, so a
second training on the same run is refused instead of overwriting the first one's
checkpoints; and `restore_newest` resumes from the newest checkpoint that loads,
skipping (and saying why) any that a crash or a full disk left truncated.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator

from absl import logging

from tomogan_tf.errors import InputError
from tomogan_tf.utils.files import atomic_path, write_json_atomic

_CHECKPOINT = re.compile(r"ckpt-(\d+)\.index")


class RunDir:
    """The files of one training run in the folder ``path``."""

    CONFIG = "config.json"
    BEST = "generator_best.keras"
    LAST = "generator_last.keras"
    METRICS = "metrics.json"
    CHECKPOINTS = "checkpoints"
    LOGS = "logs"
    LOCK = ".lock"

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)

    def __repr__(self) -> str:
        return f"RunDir({self.path!r})"

    def _join(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def config_path(self) -> str:
        return self._join(self.CONFIG)

    @property
    def best_model(self) -> str:
        return self._join(self.BEST)

    @property
    def last_model(self) -> str:
        return self._join(self.LAST)

    @property
    def metrics_path(self) -> str:
        return self._join(self.METRICS)

    @property
    def checkpoints(self) -> str:
        return self._join(self.CHECKPOINTS)

    @property
    def logs(self) -> str:
        return self._join(self.LOGS)

    @classmethod
    def of_model_file(cls, keras_path: str | os.PathLike) -> RunDir:
        """The run a ``.keras`` file sits in (its folder, with ``config.json`` beside it)."""
        return cls(os.path.dirname(os.path.abspath(os.fspath(keras_path))))

    # ------------------------------------------------------------------ reading
    def exists(self) -> bool:
        """Whether the folder holds a run's ``config.json``."""
        return os.path.isfile(self.config_path)

    def load_config(self):
        """The saved `TrainConfig` (sectioned, or an older flat ``config.json``)."""
        from tomogan_tf.training.config import TrainConfig

        return TrainConfig.load(self.config_path)

    def read_config(self) -> dict:
        """The saved config as one flat dict named as the flags are, plus the fitted
        ``normalization`` and ``flat_field``: what inference reads of a run."""
        return self.load_config().flat()

    def metrics(self) -> dict:
        """Validation figures of the best generator (empty before the first validation)."""
        if not os.path.exists(self.metrics_path):
            return {}
        try:
            with open(self.metrics_path) as f:
                return json.load(f)
        except (OSError, ValueError) as err:
            raise InputError(self.metrics_path, f"cannot read run metrics: {err}") from None

    def model_for_inference(self) -> str:
        """The best generator, or the last one when no validation has improved yet."""
        for path in (self.best_model, self.last_model):
            if os.path.exists(path):
                return path
        raise InputError(self.path, f"holds no {self.BEST} or {self.LAST}; train it first")

    # ------------------------------------------------------------------ writing
    def create(self) -> None:
        """Make the folder; one clear error when the name is taken by a file or not allowed."""
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise InputError(
                self.path, "is a file, not a run directory; give a folder for --logdir"
            )
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as err:
            raise InputError(
                self.path, f"cannot create the run directory: {err.strerror}"
            ) from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the run for one training: a second one on the same folder is refused.

        The lock is an `flock` on ``.lock``, which the system releases when the holder
        exits, however it ends (so a killed training leaves no stale lock behind). A
        folder this call created is removed again if the training fails before writing
        anything into it (a mistyped ``--h5`` leaves no empty run behind).
        """
        created = not os.path.isdir(self.path)
        self.create()
        path = self._join(self.LOCK)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as err:
                if err.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
                raise InputError(
                    self.path,
                    f"is in use by another training (process {holder}); wait for it to"
                    " finish or choose another --logdir",
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            self._remove_partial_checkpoints()
            yield
        except BaseException:
            if created and os.listdir(self.path) == [self.LOCK]:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                    os.rmdir(self.path)
            raise
        finally:
            os.close(fd)  # releases the lock

    def _remove_partial_checkpoints(self) -> None:
        """Remove the ``*_temp`` folders TensorFlow leaves when killed inside a save.

        Only called with the lock held, when no save of this run can be in progress.
        """
        with contextlib.suppress(FileNotFoundError):
            for entry in os.listdir(self.checkpoints):
                if entry.endswith("_temp"):
                    shutil.rmtree(os.path.join(self.checkpoints, entry), ignore_errors=True)

    def save_config(self, config) -> None:
        config.save(self.config_path)

    def save_metrics(self, metrics: dict) -> None:
        write_json_atomic(metrics, self.metrics_path)

    def save_model(self, model, path: str) -> None:
        """Save a ``.keras`` file under a temporary name and rename it when complete."""
        with atomic_path(path) as tmp:
            model.save(tmp)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_prefixes(self) -> list[str]:
        """Prefixes of the checkpoints on disk, newest (highest iteration) first."""
        try:
            entries = os.listdir(self.checkpoints)
        except (FileNotFoundError, NotADirectoryError):
            return []
        numbers = sorted(
            (int(m.group(1)) for m in map(_CHECKPOINT.fullmatch, entries) if m), reverse=True
        )
        return [os.path.join(self.checkpoints, f"ckpt-{n}") for n in numbers]

    def has_checkpoint(self) -> bool:
        """Whether a run has started here (a first start that failed early has none)."""
        return bool(self.checkpoint_prefixes())

    def checkpoint_manager(self, checkpoint, max_keep: int):
        """A `tf.train.CheckpointManager` over ``checkpoints/``."""
        import tensorflow as tf

        return tf.train.CheckpointManager(checkpoint, self.checkpoints, max_to_keep=max_keep)

    def restore_newest(self, checkpoint, repair: bool = True) -> str | None:
        """Restore ``checkpoint`` from the newest checkpoint that loads; return its prefix.

        A checkpoint that cannot be read whole (truncated or corrupt files) is skipped
        with a warning naming it and the reason, and (if ``repair``: the process that
        writes the run) renamed aside (``skipped-ckpt-N``),
        so that it is neither tried again nor counted as one of the checkpoints kept.
        Every tensor is read before anything is restored, so a bad checkpoint changes
        no variable. Raises
        `InputError` when checkpoints exist but none loads. None: no checkpoint yet.
        """
        import tensorflow as tf

        prefixes = self.checkpoint_prefixes()
        skipped = []
        for prefix in prefixes:
            try:
                reader = tf.train.load_checkpoint(prefix)
                for name in reader.get_variable_to_shape_map():
                    reader.get_tensor(name)
                checkpoint.restore(prefix).expect_partial()
            except Exception as err:  # TF raises several types for a damaged file
                reason = _one_line(err)
                logging.warning("skipped checkpoint %s: it does not load (%s)", prefix, reason)
                skipped.append((prefix, reason))
                if repair:
                    self._set_aside(prefix)
                continue
            if skipped and repair:
                self._write_checkpoint_state()
            return prefix
        if skipped:
            raise InputError(
                self.checkpoints,
                f"none of the {len(skipped)} checkpoint(s) loads (newest: {skipped[0][1]});"
                " start a new run with another --logdir",
            )
        return None

    def _set_aside(self, prefix: str) -> None:
        directory, name = os.path.split(prefix)
        for entry in os.listdir(directory):
            if entry == f"{name}.index" or entry.startswith(f"{name}.data-"):
                os.replace(
                    os.path.join(directory, entry), os.path.join(directory, f"skipped-{entry}")
                )

    def _write_checkpoint_state(self) -> None:
        """Point TensorFlow's ``checkpoint`` state file at the checkpoints still on disk,
        with their times, so that the `CheckpointManager` keeps rotating them."""
        import tensorflow as tf

        prefixes = self.checkpoint_prefixes()[::-1]  # oldest first, as TensorFlow lists them
        if not prefixes:
            return
        times = [os.path.getmtime(f"{p}.index") for p in prefixes]
        logger = tf.get_logger()
        level = logger.level
        logger.setLevel("ERROR")  # the v1 helper is deprecated, the file format is not
        try:
            tf.compat.v1.train.update_checkpoint_state(
                self.checkpoints,
                prefixes[-1],
                all_model_checkpoint_paths=prefixes,
                all_model_checkpoint_timestamps=times,
                last_preserved_timestamp=min(times),
            )
        finally:
            logger.setLevel(level)


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= 200 else text[:197] + "..."
