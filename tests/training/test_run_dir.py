"""The run directory survives faults: truncated checkpoints, a second training, bad names."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import ROOT, run_module

from tomogan_tf.errors import InputError
from tomogan_tf.training import TrainConfig, build_trainer, train, training_checkpoint
from tomogan_tf.training.run_dir import RunDir
from tomogan_tf.utils.files import atomic_path, temporary_name

pytestmark = pytest.mark.integration  # whole (tiny) training runs

TINY = dict(psz=16, mbsz=2, val_every=2, log_every=2, val_slices=2, vgg_weights="none", ladv=0.0)


def tiny(h5: str, logdir: str, **overrides) -> TrainConfig:
    return TrainConfig.from_settings(h5=h5, logdir=logdir, **{**TINY, **overrides})


def _truncate(path: str) -> None:
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.truncate(size // 2)


def test_a_truncated_newest_checkpoint_is_skipped_and_the_previous_one_resumed(
    pair_file, tmp_path, caplog
):
    logdir = str(tmp_path / "run")
    train(tiny(pair_file, logdir, maxiter=4))
    run = RunDir(logdir)
    newest, previous = run.checkpoint_prefixes()[:2]
    assert newest.endswith("ckpt-4") and previous.endswith("ckpt-2")
    _truncate(f"{newest}.data-00000-of-00001")

    import tensorflow as tf

    probe = build_trainer(tiny(pair_file, logdir, maxiter=4).validate())
    tf.train.Checkpoint(generator=probe.generator).read(previous).expect_partial()
    expected = [w.copy() for w in probe.generator.get_weights()]

    with caplog.at_level(logging.WARNING):
        # maxiter 2: restoring checkpoint 2 reaches it, so nothing trains after the restore
        config = tiny(pair_file, logdir, maxiter=2)
        train(config)
    skipped = [r.getMessage() for r in caplog.records if "skipped checkpoint" in r.getMessage()]
    assert len(skipped) == 1 and "ckpt-4" in skipped[0] and "does not load" in skipped[0]
    assert [os.path.basename(p) for p in run.checkpoint_prefixes()] == ["ckpt-2"]
    assert os.path.exists(os.path.join(run.checkpoints, "skipped-ckpt-4.index"))

    # Resuming again continues from iteration 2 with checkpoint 2's weights.
    resumed = build_trainer(tiny(pair_file, logdir, maxiter=4).validate())
    checkpoint = training_checkpoint_for(resumed)
    assert run.restore_newest(checkpoint).endswith("ckpt-2")
    assert int(resumed.iteration.numpy()) == 2
    for got, want in zip(resumed.generator.get_weights(), expected, strict=True):
        np.testing.assert_array_equal(got, want)
    train(tiny(pair_file, logdir, maxiter=4))
    assert [os.path.basename(p) for p in run.checkpoint_prefixes()] == ["ckpt-4", "ckpt-2"]

    # When no checkpoint loads, the run is refused rather than silently restarted.
    for prefix in run.checkpoint_prefixes():
        _truncate(f"{prefix}.index")
    with pytest.raises(InputError, match="none of the 2 checkpoint"):
        train(tiny(pair_file, logdir, maxiter=6))


def training_checkpoint_for(trainer):
    import tensorflow as tf

    return training_checkpoint(trainer, tf.Variable(-np.inf, dtype=tf.float64))


def test_a_second_training_on_a_held_run_is_refused_in_process(tmp_path):
    run = RunDir(tmp_path / "run")
    busy = r"is in use by another training \(process \d+\)"
    with run.lock(), pytest.raises(InputError, match=busy), RunDir(tmp_path / "run").lock():
        pass
    with run.lock():  # released when the first one ended
        pass


def test_a_second_training_is_refused_with_one_line_while_the_first_goes_on(pair_file, tmp_path):
    logdir = str(tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from tomogan_tf.training.run_dir import RunDir\n"
         "with RunDir(sys.argv[1]).lock():\n"
         "    print('held', flush=True)\n"
         "    time.sleep(120)\n", logdir],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        result = run_module("tomogan_tf.train", "--h5", pair_file, "--logdir", logdir,
                            "--maxiter", "2", "--psz", "16", "--vgg_weights", "none")  # fmt: skip
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1
        assert lines[0] == (
            f"tomogan_tf.train: error: {logdir}: is in use by another training (process"
            f" {holder.pid}); wait for it to finish or choose another --logdir"
        )
        assert holder.poll() is None  # the first one goes on
        assert not os.path.exists(os.path.join(logdir, "config.json"))
    finally:
        holder.kill()
        holder.wait()


def test_a_logdir_that_is_a_file_gives_one_line_and_exit_2(pair_file, tmp_path):
    path = tmp_path / "taken"
    path.write_text("not a folder")
    result = run_module("tomogan_tf.train", "--h5", pair_file, "--logdir", str(path),
                        "--maxiter", "2", "--vgg_weights", "none")  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"tomogan_tf.train: error: {path}: is a file, not a run directory; give a folder"
        " for --logdir"
    )
    assert path.read_text() == "not a folder"


def test_temporaries_of_killed_processes_do_not_accumulate(pair_file, tmp_path):
    logdir = tmp_path / "run"
    logdir.mkdir()
    dead = _dead_pid()
    stale = [logdir / f".generator_best.tmp-{dead}.keras", logdir / f".metrics.tmp-{dead}.json"]
    for path in stale:
        path.write_text("half written")
    (logdir / "checkpoints").mkdir()
    partial = logdir / "checkpoints" / "ckpt-7_temp"
    partial.mkdir()
    (partial / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")
    train(tiny(pair_file, str(logdir), maxiter=2))
    leftovers = [p.name for p in logdir.rglob("*") if ".tmp-" in p.name or p.name.endswith("_temp")]
    assert leftovers == []


def test_atomic_path_keeps_temporaries_of_live_processes(tmp_path):
    target = str(tmp_path / "out.json")
    live = tmp_path / f".out.tmp-{os.getppid()}.json"  # our parent still runs
    dead = tmp_path / f".out.tmp-{_dead_pid()}.json"
    live.write_text("{}")
    dead.write_text("{}")
    with atomic_path(target) as tmp:
        assert tmp == temporary_name(target)
        with open(tmp, "w") as f:
            f.write("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.json", live.name])


def test_atomic_path_leaves_the_old_file_when_the_writer_fails(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(str(target)) as tmp:
        with open(tmp, "w") as f:
            f.write("new, half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def _dead_pid() -> int:
    """A process id that no process has now."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    time.sleep(0.01)
    return child.pid
