"""Noise2Inverse's data: K sub-reconstructions of one scan, and the pairs made from them.

Each of the K stacks is reconstructed from its own disjoint subset of the projection
angles (``python -m tomogan_tf.reconstruct --splits K`` writes them as ``split_0`` ...
``split_{K-1}``), so their noise is independent while the object is the same. Noise2Inverse
(Hendriksen, Pelt and Batenburg, IEEE TCI 2020) trains on the pairs (mean of K - 1 of
them, the remaining one) for every choice of the held-out split and denoises a slice by
averaging the model's outputs on the K means.

`SplitReconstructions` is the K stacks read as their mean (the full reconstruction, up to
rounding): the stack that denoise and evaluate score, write and name. Its
`held_out_inputs` and `held_out_targets` are the pairs, laid out as one stack of N x K
slices (slice ``i * K + j`` is slice ``i`` with split ``j`` held out), so the training
pipeline samples every (slice, held-out split) uniformly and inference streams them in
slice order. Their `neighbours` stay within one held-out choice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np

from tomogan_tf.data.sources.base import WHOLE, ImageStack, neighbour_indices
from tomogan_tf.data.sources.hdf5 import open_hdf5
from tomogan_tf.errors import InputError

#: The split datasets' names (``{k}`` is the split's number): what `reconstruct` writes.
SPLIT_KEY = "split_{k}"
MIN_SPLITS = 2


def split_names(pattern: str, count: int) -> list[str]:
    """The dataset names of ``count`` splits."""
    return [pattern.format(k=k) for k in range(count)]


def open_splits(
    path: str, pattern: str = SPLIT_KEY, count: int | None = None
) -> SplitReconstructions:
    """The split stacks ``pattern`` names in the HDF5 file ``path`` (``{k}`` = 0, 1, ...).

    ``count`` None takes every split present from 0 up; otherwise exactly ``count`` must
    be there. Raises `InputError` naming the file for a missing split, too few splits,
    or splits that do not match slice for slice.
    """
    import h5py

    from tomogan_tf.data.hdf5 import H5_LOCK, open_h5

    if "{k}" not in pattern:
        raise InputError(
            None, f"--split_key must contain {{k}} (the split's number), got '{pattern}'"
        )
    with H5_LOCK, open_h5(path) as f:
        present = 0
        while pattern.format(k=present) in f and isinstance(
            f[pattern.format(k=present)], h5py.Dataset
        ):
            present += 1
    wanted = present if count is None else count
    if present < wanted or wanted < MIN_SPLITS:
        found = (
            f"holds {present} (" + ", ".join(split_names(pattern, present)) + ")"
            if present
            else "holds none"
        )
        need = f"{count}" if count is not None else f"at least {MIN_SPLITS}"
        raise InputError(
            path,
            f"Noise2Inverse needs {need} sub-reconstructions named '{pattern}'; the file {found}"
            " (python -m tomogan_tf.reconstruct --splits K writes them)",
        )
    if count is not None and present > count:
        raise InputError(
            path,
            f"holds {present} sub-reconstructions '{pattern}', not {count} (--splits, or the"
            f" model's): reconstruct with --splits {count}; a mean of K - 1 splits is as noisy"
            " as K makes it",
        )
    return SplitReconstructions(
        [open_hdf5(path, key, require_stack=True) for key in split_names(pattern, wanted)]
    )


class _SplitSet(ImageStack):
    """What both views of K aligned split stacks share: checks, files, reads of slices."""

    def __init__(self, splits: Sequence[ImageStack]):
        splits = list(splits)
        if len(splits) < MIN_SPLITS:
            raise InputError(
                splits[0].path if splits else None,
                f"Noise2Inverse needs at least {MIN_SPLITS} sub-reconstructions, got {len(splits)}",
            )
        first = splits[0]
        for other in splits[1:]:
            if other.shape != first.shape:
                raise InputError(
                    other.path,
                    f"sub-reconstruction {other.describe()} has shape {other.shape} but"
                    f" {first.describe()} has {first.shape}; they must match slice for slice",
                )
        self.splits = splits
        self.path, self.dtype = first.path, np.dtype(np.float32)
        self.key = None
        self.single_image = False

    @property
    def count(self) -> int:
        """K, the number of splits."""
        return len(self.splits)

    def _slices(self, indices: Sequence[int], region: Any) -> np.ndarray:
        """(K, len(indices), h, w): every split's slices ``indices`` at ``region``."""
        return np.stack([s.read(list(indices), region) for s in self.splits])

    def opened(self) -> contextlib.AbstractContextManager:
        held = contextlib.ExitStack()
        for s in self.splits:
            held.enter_context(s.opened())
        return held

    def close(self) -> None:
        for s in self.splits:
            s.close()

    def describe(self) -> str:
        names = ", ".join(
            f"'{s.key}'" if s.key else f"split {k}" for k, s in enumerate(self.splits[:2])
        )
        more = ", ..." if self.count > 2 else ""
        return f"the {self.count} sub-reconstructions ({names}{more})"


class SplitReconstructions(_SplitSet):
    """K aligned (N, H, W) sub-reconstructions, read as their mean (the full reconstruction)."""

    def __init__(self, splits: Sequence[ImageStack]):
        super().__init__(splits)
        self.shape = self.splits[0].shape

    def _read_raw(self, rows: slice | list[int], region: Any) -> np.ndarray:
        indices = range(rows.start, rows.stop) if isinstance(rows, slice) else rows
        return self._slices(list(indices), region).mean(axis=0)

    def subset(self, start: int, stop: int) -> SplitReconstructions:
        """Slices ``[start, stop)`` of every split (a validation hold-out)."""
        return SplitReconstructions([s.subset(start, stop) for s in self.splits])

    def held_out_inputs(self) -> HeldOutPairs:
        """The N x K network inputs: slice ``i * K + j`` is the mean of all splits but ``j``."""
        return HeldOutPairs(self.splits, "inputs")

    def held_out_targets(self) -> HeldOutPairs:
        """The N x K targets: slice ``i * K + j`` is split ``j``'s slice ``i``."""
        return HeldOutPairs(self.splits, "targets")


class HeldOutPairs(_SplitSet):
    """One side of the (mean of K - 1, held-out split) pairs, as an (N x K, H, W) stack.

    ``role`` "inputs": slice ``i * K + j`` is the mean of every split but ``j`` at slice
    ``i``; "targets": split ``j``'s slice ``i``. A slice's neighbours are those of slice
    ``i`` with the same split ``j`` held out, as a network reading ``depth`` slices sees
    them at inference.
    """

    def __init__(self, splits: Sequence[ImageStack], role: str):
        if role not in ("inputs", "targets"):
            raise ValueError(f"role must be 'inputs' or 'targets', got {role!r}")
        super().__init__(splits)
        self.role = role
        n, height, width = self.splits[0].shape
        self.slices = n
        self.shape = (n * self.count, height, width)

    def _read_raw(self, rows: slice | list[int], region: Any) -> np.ndarray:
        rows = list(range(rows.start, rows.stop)) if isinstance(rows, slice) else list(rows)
        k = self.count
        if self.role == "targets":  # one split's slice each
            return np.concatenate(
                [self.splits[j].read([i], region) for i, j in map(self._pair, rows)]
            )
        needed = sorted({r // k for r in rows})
        data = self._slices(needed, region)  # (K, len(needed), h, w)
        total = data.sum(axis=0, dtype=np.float32)
        place = {i: m for m, i in enumerate(needed)}
        out = np.empty((len(rows), *data.shape[2:]), np.float32)
        for r, (i, j) in enumerate(map(self._pair, rows)):
            out[r] = (total[place[i]] - data[j, place[i]]) / (k - 1)
        return out

    def _pair(self, index: int) -> tuple[int, int]:
        """(slice, held-out split) of ``index``."""
        return divmod(int(index), self.count)

    def correct(self, raw: np.ndarray, region: Any = WHOLE) -> np.ndarray:
        return raw  # already float32 and checked, read through the splits

    def neighbours(self, index: int, depth: int) -> list[int]:
        i, j = self._pair(index)
        return [m * self.count + j for m in neighbour_indices(i, self.slices, depth)]

    def slice_name(self, index: int) -> str:
        i, j = self._pair(index)
        return f"slice {i} (split {j} held out)"

    def subset(self, start: int, stop: int) -> HeldOutPairs:
        """Whole slices only: ``start`` and ``stop`` must be multiples of K."""
        k = self.count
        if start % k or stop % k:
            raise ValueError(f"a subset of held-out pairs takes whole slices (multiples of {k})")
        return HeldOutPairs([s.subset(start // k, stop // k) for s in self.splits], self.role)

    def describe(self) -> str:
        what = "means of K - 1 of" if self.role == "inputs" else "held-out splits of"
        return f"{what} {super().describe()}"


def average_groups(count: int, write):
    """A ``write(start, data)`` over N x K held-out results that hands ``write`` of N
    slices each slice's mean over its K results (Noise2Inverse's inference rule).

    Results must arrive in order, as the streaming functions deliver them.
    """
    pending: list[np.ndarray] = []
    done = {"slices": 0}

    def collect(start: int, data: np.ndarray) -> None:
        pending.extend(data)
        whole = len(pending) // count
        if whole:
            group = np.stack(pending[: whole * count]).reshape(whole, count, *data.shape[1:])
            del pending[: whole * count]
            write(done["slices"], group.mean(axis=1, dtype=np.float64).astype(np.float32))
            done["slices"] += whole

    return collect
