"""Sharded denoising: ``denoise --shard I/N`` per slice range, ``--merge`` to join them,
identical to one run (`tomogan_tf.data.shards`)."""

from __future__ import annotations

import itertools
import os

import h5py
import numpy as np
import pytest
from helpers import run_module

from tomogan_tf.data.shards import Shard, shard_path, shard_range
from tomogan_tf.data.sources import ArrayStack, ShardView
from tomogan_tf.errors import InputError


@pytest.mark.parametrize("n, count", [(7, 3), (10, 10), (100, 7), (5, 1)])
def test_shard_ranges_tile_the_stack_in_order(n, count):
    ranges = [shard_range(n, i, count) for i in range(1, count + 1)]
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


@pytest.mark.parametrize("spec", ["3", "0/4", "5/4", "a/b", "2/4/1", ""])
def test_bad_shard_spec_is_refused(spec):
    with pytest.raises(InputError, match="--shard"):
        Shard.parse(spec)


def test_shard_names_and_parse():
    assert Shard.parse(" 2 / 8 ") == Shard(2, 8)
    assert shard_path("/d/out.h5", 2, 8) == "/d/out.shard-2-of-8.h5"


def test_shard_view_reads_the_whole_stacks_neighbours():
    data = np.arange(7 * 2 * 3, dtype=np.float32).reshape(7, 2, 3)
    whole = ArrayStack(data)
    view = ShardView(whole, 2, 4)
    for i in range(2):
        neighbours = view.neighbours(i, 5)
        assert [j + 2 for j in neighbours] == whole.neighbours(i + 2, 5)
        np.testing.assert_array_equal(view.read(neighbours), whole.read(whole.neighbours(i + 2, 5)))
    first = ShardView(whole, 0, 2)  # reflected at the stack's own end only
    assert first.neighbours(0, 3) == [1, 0, 1]


@pytest.fixture
def stack_file(tmp_path) -> str:
    rng = np.random.default_rng(3)
    path = str(tmp_path / "scan.h5")
    with h5py.File(path, "w") as f:
        f["test_ns"] = (200 + 50 * rng.random((7, 40, 48))).astype(np.float32)
    return path


def denoise(*args: str):
    done = run_module("tomogan_tf.denoise", *args)
    return done.returncode, done.stdout, done.stderr.strip().splitlines()


def read(path: str, key: str = "denoised") -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f[key][...]


def test_shards_merged_equal_one_run(stack_file, tmp_path):
    """The shipped model (depth 3) reads across shard ends: merged == one run, bit for bit."""
    whole, out = str(tmp_path / "whole.h5"), str(tmp_path / "den.h5")
    code, _, err = denoise("--input", stack_file, "--output", whole)
    assert code == 0, err
    for i in (1, 2, 3):
        code, stdout, err = denoise("--input", stack_file, "--output", out, "--shard", f"{i}/3")
        assert code == 0, err
        assert f"shard {i}/3" in stdout
    assert not os.path.exists(out)
    assert [len(read(shard_path(out, i, 3))) for i in (1, 2, 3)] == [2, 2, 3]
    code, stdout, err = denoise("--merge", "--output", out)
    assert code == 0, err
    assert "merged 3 shards (7 slices of 40x48, copied)" in stdout
    np.testing.assert_array_equal(read(out), read(whole))

    # A virtual dataset over the shards, read from elsewhere: the same slices, no copy.
    code, _, err = denoise("--merge", "--virtual", "--output", out, "--overwrite")
    assert code == 0, err
    with h5py.File(out, "r") as f:
        assert f["denoised"].is_virtual
    np.testing.assert_array_equal(read(out), read(whole))
    assert os.path.getsize(out) < 0.2 * os.path.getsize(whole)


def test_merge_names_a_missing_or_foreign_shard(stack_file, tmp_path):
    out = str(tmp_path / "den.h5")
    for i in (1, 3):
        assert denoise("--input", stack_file, "--output", out, "--shard", f"{i}/3")[0] == 0
    code, _, err = denoise("--merge", "--output", out)
    assert code == 2 and len(err) == 1
    assert "1 of 3 shards missing (den.shard-2-of-3.h5)" in err[0]
    assert not os.path.exists(out)

    # shard 2 of another stack (4 slices) under the expected name
    other = str(tmp_path / "other.h5")
    with h5py.File(other, "w") as f:
        f["test_ns"] = read(stack_file, "test_ns")[:4]
    assert denoise("--input", other, "--output", str(tmp_path / "o.h5"), "--shard", "2/3")[0] == 0
    os.replace(shard_path(str(tmp_path / "o.h5"), 2, 3), shard_path(out, 2, 3))
    code, _, err = denoise("--merge", "--output", out)
    assert code == 2 and len(err) == 1
    assert "den.shard-2-of-3.h5: records shard 2/3 of 4 slices, not 2/3 of 7" in err[0]
    assert not os.path.exists(out)


@pytest.mark.parametrize(
    "extra, problem",
    [
        (["--output", "den.tif", "--shard", "1/2"], "give an .h5 --output"),
        (["--output", "den.h5", "--shard", "1/9"], "7 slices cannot make 9 shards"),
        (["--output", "den.h5", "--shard", "3/2"], "I must be 1..N"),
        (["--output", "den.h5", "--virtual"], "--virtual applies to --merge only"),
    ],
)
def test_shard_flags_refused_with_one_line(stack_file, tmp_path, extra, problem):
    extra = [str(tmp_path / a) if a.startswith("den.") else a for a in extra]
    code, _, err = denoise("--input", stack_file, *extra)
    assert code == 2 and len(err) == 1 and problem in err[0], err
    assert not [p for p in os.listdir(tmp_path) if p.startswith("den")]
