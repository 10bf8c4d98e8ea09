"""Distributed training on CPU: cluster roles, replica shares of the patch stream, a
mirrored run against one device, and a two-worker job that completes, loses a worker
and resumes (`tomogan_tf.training.distribute`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from helpers import ROOT, write_pair_file

from tomogan_tf.data import Normalizer, StackReader, patch_dataset
from tomogan_tf.errors import InputError
from tomogan_tf.training.distribute import Role, cluster_role, local_cluster, resolve_strategy

HERE = os.path.dirname(os.path.abspath(__file__))


def tf_config(ports: list[int], index: int, task: str = "worker") -> str:
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    return json.dumps({"cluster": cluster, "task": {"type": task, "index": index}})


# ----------------------------------------------------------------------------- roles
def test_cluster_role_reads_tf_config():
    assert cluster_role({}) == Role() and Role().is_chief
    two = [1111, 2222]
    first, second = (cluster_role({"TF_CONFIG": tf_config(two, i)}) for i in (0, 1))
    assert (first.workers, first.is_chief) == (2, True)
    assert (second.index, second.is_chief) == (1, False)
    cluster = {"chief": ["a:1"], "worker": ["b:2"]}
    for task, chief in (("worker", False), ("chief", True)):
        spec = {"cluster": cluster, "task": {"type": task, "index": 0}}
        role = cluster_role({"TF_CONFIG": json.dumps(spec)})
        assert (role.workers, role.is_chief) == (2, chief)


def test_local_cluster_gives_each_worker_its_place():
    configs = local_cluster(3)
    roles = [cluster_role({"TF_CONFIG": c}) for c in configs]
    assert [(r.index, r.workers, r.is_chief) for r in roles] == [
        (0, 3, True),
        (1, 3, False),
        (2, 3, False),
    ]
    hosts = json.loads(configs[0])["cluster"]["worker"]
    assert len(set(hosts)) == 3 and all(h.startswith("localhost:") for h in hosts)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("{not json", "not a cluster spec"),
        ('{"task": {"type": "worker", "index": 0}}', "not a cluster spec"),
        (tf_config([1111, 2222], 2), "worker 2 is not in its cluster"),
    ],
)
def test_bad_tf_config_is_one_clear_error(text, problem):
    with pytest.raises(InputError, match=problem):
        cluster_role({"TF_CONFIG": text})


def test_multiworker_needs_a_cluster():
    with pytest.raises(InputError, match="needs TF_CONFIG"):
        resolve_strategy("multiworker", Role())
    assert resolve_strategy("auto", Role(workers=2)) == "multiworker"
    assert resolve_strategy("auto", Role()) == "none"  # no GPU here
    assert resolve_strategy("mirrored", Role()) == "mirrored"


def test_multiworker_without_tf_config_exits_2(pair_file, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    done = subprocess.run(
        [sys.executable, "-m", "tomogan_tf.train", "--h5", pair_file, "--logdir",
         str(tmp_path / "run"), "--strategy", "multiworker"],
        cwd=ROOT, env={**env, "PYTHONPATH": ROOT}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith("tomogan_tf.train: error: --strategy")
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------- replica shares
@pytest.mark.parametrize("group, start", [(1, 0), (2, 48)])
def test_replica_shares_make_up_the_one_device_batches(pair_file, group, start):
    reader = StackReader.open(pair_file, "train_ns", "train_gt")
    norm = Normalizer(-0.3, 1.6)

    def elements(replicas, count):
        ds = patch_dataset(reader, 16, 4, norm, group=group, start=start, replicas=replicas)
        return [tuple(t.numpy() for t in e) for e in ds.take(count)]

    single = elements(((0,), 1), 2)
    one_worker = elements(((0, 1), 2), 4)  # both replicas of one pipeline, in turn
    first, second = elements(((0,), 2), 2), elements(((1,), 2), 2)  # one each
    for step, (noisy, clean) in enumerate(single):
        for shares in ([first[step], second[step]], one_worker[2 * step : 2 * step + 2]):
            assert shares[0][0].shape == (group, 2, 16, 16, 1)
            np.testing.assert_array_equal(np.concatenate([s[0] for s in shares], 1), noisy)
            np.testing.assert_array_equal(np.concatenate([s[1] for s in shares], 1), clean)


def test_a_batch_that_does_not_split_over_the_replicas_is_refused(pair_file):
    reader = StackReader.open(pair_file, "train_ns", "train_gt")
    with pytest.raises(InputError, match="--mbsz 5 does not split evenly over 2 replicas"):
        patch_dataset(reader, 16, 5, Normalizer(0, 1), replicas=((0,), 2))


# ----------------------------------------------------------------------- mirrored
def test_mirrored_run_matches_one_device(tmp_path):
    """Two logical CPU devices, the same global batch: the same losses and weights."""
    h5 = write_pair_file(str(tmp_path / "pairs.h5"))
    done = subprocess.run(
        [sys.executable, os.path.join(HERE, "mirrored_run.py"), h5, str(tmp_path)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "figures.json").read_text())
    assert figures["replicas"] == 2
    one, two = figures["losses"]["one"]["train/g_loss"], figures["losses"]["two"]["train/g_loss"]
    assert set(one) == set(two) == {"1", "2"}
    for step in ("1", "2"):  # the first step's loss, and the one after the first update
        assert two[step] == pytest.approx(one[step], rel=1e-5)
    assert one["1"] != pytest.approx(one["2"], rel=1e-3)  # the steps did train
    assert figures["max_weight_difference"] < 1e-6
    assert figures["val_psnr"]["two"] == pytest.approx(figures["val_psnr"]["one"], abs=1e-3)
    # The critic's warm-up phases ran mirrored, and each point logs only what ran since
    # the last: the generator alone, then the critic alone, then both.
    gan = {tag[6:]: steps for tag, steps in figures["gan_losses"].items()}
    assert set(gan["g_loss"]) == {"1", "3"} and set(gan["d_loss"]) == {"2", "3"}
    assert set(gan["adv"]) == {"3"}


# -------------------------------------------------------------------- multi-worker
def start_workers(h5: str, logdir: str, maxiter: int, workers: int = 2) -> list[subprocess.Popen]:
    procs = []
    for config in local_cluster(workers):
        env = {**os.environ, "PYTHONPATH": ROOT, "TF_CONFIG": config}
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tomogan_tf.train", "--h5", h5, "--logdir", logdir,
                 "--psz", "16", "--mbsz", "4", "--maxiter", str(maxiter), "--val_every", "2",
                 "--log_every", "1", "--val_slices", "2", "--ladv", "0",
                 "--vgg_weights", "none"],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )
        )  # fmt: skip
    return procs


def finish(procs: list[subprocess.Popen], timeout: float = 300) -> list[tuple[int, str, str]]:
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return results


def checkpoints(logdir: str) -> list[int]:
    folder = os.path.join(logdir, "checkpoints")
    names = os.listdir(folder) if os.path.isdir(folder) else []
    return sorted(int(n[5:-6]) for n in names if n.startswith("ckpt-") and n.endswith(".index"))


def test_two_worker_job_completes_survives_a_lost_worker_and_resumes(tmp_path):
    h5 = write_pair_file(str(tmp_path / "pairs.h5"))
    logdir = str(tmp_path / "run")

    # To completion: the chief writes the run, the other worker reads along.
    results = finish(start_workers(h5, logdir, maxiter=4))
    for code, _, err in results:
        assert code == 0, err[-3000:]
    assert checkpoints(logdir) == [2, 4]
    with open(os.path.join(logdir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["iteration"] in (2, 4)
    assert "best generator at iteration" in results[0][1]  # the chief's summary
    assert "best generator" not in results[1][1]
    assert "2 replica(s) in sync" in results[0][2]

    # A worker dies mid-run: its peer stops with one line, the checkpoints stay.
    procs = start_workers(h5, logdir, maxiter=100_000)
    try:
        deadline = time.monotonic() + 240
        while max(checkpoints(logdir)) < 8 and time.monotonic() < deadline:
            assert procs[0].poll() is None, procs[0].communicate()[1][-3000:]
            time.sleep(0.2)
        procs[1].kill()
        (code, _, err), _ = finish(procs, timeout=120)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("tomogan_tf.train: error: after iteration")
    assert "start every worker again with the same command to resume from" in last
    kept = checkpoints(logdir)
    assert kept[-1] >= 8

    # Started again, the job resumes from the chief's newest checkpoint.
    results = finish(start_workers(h5, logdir, maxiter=kept[-1] + 2))
    for code, _, err in results:
        assert code == 0, err[-3000:]
        assert f"resumed {logdir}/checkpoints/ckpt-{kept[-1]} at iteration {kept[-1]}" in err
    assert checkpoints(logdir)[-1] == kept[-1] + 2
    assert tf.train.load_checkpoint(os.path.join(logdir, "checkpoints", f"ckpt-{kept[-1] + 2}"))
