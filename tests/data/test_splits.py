"""Noise2Inverse's sub-reconstructions: the full stack, the held-out pairs, the averaging."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tomogan_tf.data.sources import ArrayStack
from tomogan_tf.data.sources.splits import SplitReconstructions, average_groups, open_splits
from tomogan_tf.errors import InputError

RNG = np.random.default_rng(3)
SPLITS = [RNG.normal(size=(5, 8, 8)).astype(np.float32) for _ in range(4)]


def splits() -> SplitReconstructions:
    return SplitReconstructions([ArrayStack(s, f"split {k}") for k, s in enumerate(SPLITS)])


def test_the_stack_is_the_mean_and_the_pairs_hold_out_each_split():
    stack = splits()
    assert stack.shape == (5, 8, 8)
    np.testing.assert_allclose(stack.read(range(5)), np.mean(SPLITS, axis=0), atol=1e-6)
    inputs, targets = stack.held_out_inputs(), stack.held_out_targets()
    assert inputs.shape == targets.shape == (20, 8, 8)
    for index in (0, 6, 7, 19):
        i, j = divmod(index, 4)
        others = np.mean([SPLITS[k][i] for k in range(4) if k != j], axis=0)
        np.testing.assert_allclose(inputs.read([index])[0], others, atol=1e-6)
        np.testing.assert_array_equal(targets.read([index])[0], SPLITS[j][i])
    assert targets.slice_name(6) == "slice 1 (split 2 held out)"


def test_neighbours_keep_the_held_out_split():
    inputs = splits().held_out_inputs()
    # Slice 1 with split 2 held out: slices 0, 1, 2 with split 2 held out.
    assert inputs.neighbours(6, 3) == [2, 6, 10]
    # At the first slice the neighbour is mirrored, never another held-out choice.
    assert inputs.neighbours(3, 3) == [7, 3, 7]
    assert inputs.subset(4, 12).shape == (8, 8, 8)
    with pytest.raises(ValueError, match="whole slices"):
        inputs.subset(1, 4)


def test_average_groups_gives_each_slice_the_mean_of_its_results():
    stack = splits()
    values = stack.held_out_inputs().read(range(20))
    out = np.zeros((5, 8, 8), np.float32)
    starts = []

    def write(start, data):
        starts.append(start)
        out[start : start + len(data)] = data

    collect = average_groups(4, write)
    for start, stop in ((0, 3), (3, 9), (9, 20)):  # batches that split groups
        collect(start, values[start:stop])
    # The mean over the K held-out means is the mean of all splits.
    np.testing.assert_allclose(out, np.mean(SPLITS, axis=0), atol=1e-6)
    assert starts == [0, 2]


def test_open_splits_names_the_file_and_the_problem(tmp_path):
    path = tmp_path / "recon.h5"
    with h5py.File(path, "w") as f:
        for k in range(3):
            f[f"split_{k}"] = SPLITS[k]
        f["odd_0"], f["odd_1"] = SPLITS[0], SPLITS[1][:, :4]
    assert open_splits(str(path)).count == 3
    with pytest.raises(InputError, match=r"holds 3 sub-reconstructions 'split_\{k\}', not 2"):
        open_splits(str(path), count=2)
    with pytest.raises(InputError, match=r"needs 4 sub-reconstructions named 'split_\{k\}'; the"
                       r" file holds 3 \(split_0, split_1, split_2\)") as err:  # fmt: skip
        open_splits(str(path), count=4)
    assert err.value.path == str(path)
    with pytest.raises(InputError, match="holds none"):
        open_splits(str(path), "missing_{k}")
    with pytest.raises(InputError, match="must contain"):
        open_splits(str(path), "split")
    with pytest.raises(InputError, match="must match slice for slice"):
        open_splits(str(path), "odd_{k}")
