"""Denoising a stack in shards: contiguous slice ranges, one file each, joined after.

A scheduler's job array spreads a large scan over nodes: job ``I`` of ``N`` runs
``python -m tomogan_tf.denoise --shard I/N --output out.h5 ...`` and writes the I-th
of N contiguous slice ranges (`shard_range`) to ``out.shard-I-of-N.h5`` (`shard_path`),
reading the neighbouring slices a model of ``--depth`` > 1 needs from outside its range
(`tomogan_tf.data.sources.ShardView`). Then ``python -m tomogan_tf.denoise --merge
--output out.h5`` checks that the N shard files are all there and fit together
(`merge_shards`) and joins them: by copying the slices into ``out.h5``, or with
``--virtual`` as an HDF5 virtual dataset that reads them in place (no copy; the shard
files must then stay beside it).

Each shard file records which part it is (``SHARD_ATTRS`` on its dataset), so a
missing, foreign or half-written shard is named instead of merged.
"""

from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass

import h5py

from tomogan_tf.errors import InputError
from tomogan_tf.utils.files import atomic_path

SHARD_ATTRS = ("shard_index", "shard_count", "shard_start", "shard_stop", "shard_total")
_SHARD_NAME = re.compile(r"\.shard-(\d+)-of-(\d+)$")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) of ``count``."""

    index: int
    count: int

    @classmethod
    def parse(cls, spec: str) -> Shard:
        """``"I/N"`` (1 <= I <= N), as ``--shard`` takes it."""
        match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec or "")
        if not match:
            raise InputError(None, f"--shard takes I/N (e.g. 2/8), not {spec!r}")
        index, count = int(match.group(1)), int(match.group(2))
        if not 1 <= index <= count:
            raise InputError(None, f"--shard {spec}: I must be 1..N (1..{count})")
        return cls(index, count)

    def range(self, n: int) -> tuple[int, int]:
        """``[start, stop)`` of this shard of ``n`` slices (`shard_range`)."""
        return shard_range(n, self.index, self.count)

    def path(self, output: str) -> str:
        return shard_path(output, self.index, self.count)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_range(n: int, index: int, count: int) -> tuple[int, int]:
    """Slices ``[start, stop)`` of shard ``index`` (1-based) of ``count`` over ``n`` slices:
    contiguous, in order, their sizes differing by at most one."""
    return (index - 1) * n // count, index * n // count


def shard_path(output: str, index: int, count: int) -> str:
    """``out.h5`` -> ``out.shard-2-of-8.h5``: where shard ``index`` of ``count`` goes."""
    stem, suffix = os.path.splitext(output)
    return f"{stem}.shard-{index}-of-{count}{suffix}"


def shard_attrs(shard: Shard, n: int) -> dict[str, int]:
    start, stop = shard.range(n)
    return dict(zip(SHARD_ATTRS, (shard.index, shard.count, start, stop, n), strict=True))


def find_shards(output: str) -> list[str]:
    """The shard files of ``output``, in order; `InputError` unless exactly one full set."""
    stem, suffix = os.path.splitext(output)
    found: dict[int, dict[int, str]] = {}
    for path in glob.glob(f"{glob.escape(stem)}.shard-*-of-*{glob.escape(suffix)}"):
        match = _SHARD_NAME.search(os.path.splitext(path)[0])
        if match:
            index, count = int(match.group(1)), int(match.group(2))
            found.setdefault(count, {})[index] = path
    if not found:
        raise InputError(
            output,
            f"no shard files {os.path.basename(stem)}.shard-I-of-N{suffix} to merge"
            " (written by tomogan_tf.denoise --shard I/N)",
        )
    if len(found) > 1:
        counts = ", ".join(str(c) for c in sorted(found))
        raise InputError(output, f"shard files of several splits (N = {counts}); keep one set")
    ((count, shards),) = found.items()
    missing = [i for i in range(1, count + 1) if i not in shards]
    if missing:
        names = ", ".join(os.path.basename(shard_path(output, i, count)) for i in missing[:4])
        raise InputError(
            output,
            f"{len(missing)} of {count} shards missing ({names}); run tomogan_tf.denoise"
            f" --shard I/{count} for them first",
        )
    return [shards[i] for i in range(1, count + 1)]


def merge_shards(output: str, key: str, virtual: bool = False, overwrite: bool = False) -> tuple:
    """Join the shard files of ``output`` (dataset ``key``) into ``output``.

    Checks that each holds its part (`SHARD_ATTRS`), that the parts tile one stack
    and agree in image size and dtype; copies them slice by slice (or, with
    ``virtual``, maps them as an HDF5 virtual dataset). Written under a temporary name
    and renamed when complete. Returns the merged (N, H, W) shape.
    """
    if os.path.exists(output) and not overwrite:
        raise InputError(output, "exists; pass --overwrite to replace it")
    paths = find_shards(output)
    parts = []
    for path in paths:
        try:
            with h5py.File(path, "r") as f:
                if key not in f:
                    raise InputError(path, f"has no dataset '{key}' (--output_key)")
                data = f[key]
                attrs = {a: data.attrs.get(a) for a in SHARD_ATTRS}
                if any(v is None for v in attrs.values()):
                    raise InputError(path, f"dataset '{key}' is not a shard (no shard record)")
                parts.append((path, data.shape, data.dtype, {k: int(v) for k, v in attrs.items()}))
                if len(parts) == 1:
                    kept = {k: v for k, v in data.attrs.items() if k not in SHARD_ATTRS}
        except OSError as err:
            raise InputError(path, f"cannot be read as HDF5 ({err})") from None
    total = parts[0][3]["shard_total"]
    height_width, dtype = parts[0][1][1:], parts[0][2]
    for i, (path, shape, part_dtype, attrs) in enumerate(parts, start=1):
        expected = shard_range(total, i, len(parts))
        problem = None
        if (attrs["shard_index"], attrs["shard_count"], attrs["shard_total"]) != (
            i,
            len(parts),
            total,
        ):
            problem = (
                f"records shard {attrs['shard_index']}/{attrs['shard_count']} of"
                f" {attrs['shard_total']} slices, not {i}/{len(parts)} of {total}"
            )
        elif (attrs["shard_start"], attrs["shard_stop"]) != expected or shape[0] != (
            expected[1] - expected[0]
        ):
            problem = f"holds {shape[0]} slices, not slices {expected[0]}..{expected[1] - 1}"
        elif shape[1:] != height_width or part_dtype != dtype:
            problem = (
                f"holds {shape[1:]} {part_dtype} images, unlike the first shard's"
                f" {height_width} {dtype}"
            )
        if problem:
            raise InputError(path, f"{problem}; denoise that shard again")
    shape = (total, *height_width)
    with atomic_path(output) as tmp, h5py.File(tmp, "w") as out:
        if virtual:
            layout = h5py.VirtualLayout(shape=shape, dtype=dtype)
            for path, part_shape, _, attrs in parts:
                # A name relative to the merged file: found beside it wherever it is read.
                source = h5py.VirtualSource(os.path.basename(path), key, shape=part_shape)
                layout[attrs["shard_start"] : attrs["shard_stop"]] = source
            target = out.create_virtual_dataset(key, layout)
        else:
            chunks = (1, min(shape[1], 2048), min(shape[2], 2048))
            target = out.create_dataset(key, shape=shape, dtype=dtype, chunks=chunks)
            for path, _, _, attrs in parts:
                with h5py.File(path, "r") as f:
                    part = f[key]
                    for k in range(part.shape[0]):
                        target[attrs["shard_start"] + k] = part[k]
        for name, value in kept.items():
            target.attrs[name] = value
        target.attrs["merged_from"] = [os.path.basename(p) for p in paths]
    return shape
