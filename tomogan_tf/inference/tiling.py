"""Tiled prediction with a smooth blending window, for images and volumes of any size.

A fully convolutional denoiser gives the same output for a pixel whether it sees
the whole image or a tile, provided the tile extends at least the network's
receptive-field radius beyond that pixel and the tile grid is aligned with the
network's pooling grid. Tiles here start on multiples of the model's input multiple
and overlap by at least that radius; overlapping predictions are blended with a
raised-cosine window so that any residual disagreement fades smoothly instead of
leaving seams. The same code tiles 2-D images (batch, H, W, C) and 3-D volumes
(batch, D, H, W, C): the window is the outer product of one 1-D profile per axis.

Tiles are visited in order of their start along the first spatial axis, so the
output is finished front to back: `blend_tiles` hands out each block of the first
axis as soon as no later tile can touch it, which lets a volume stream through in
slabs with bounded memory.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterator

import numpy as np

Region = tuple[slice, ...]


def receptive_field_radius(
    predict: Callable[[np.ndarray], np.ndarray],
    depth: int,
    multiple: int,
    size: int = 256,
    value_range: tuple[float, float] = (0.0, 1.0),
    dims: int = 2,
) -> int:
    """Measure how far from a pixel the input still changes that pixel's output.

    Perturbs a central block, ``multiple`` wide along each probed axis (so every
    phase of the pooling grid is probed), of a random input and finds the farthest
    output pixel that moves: an empirical receptive-field radius, rounded up to
    ``multiple``. It follows the network's connectivity, so it holds for any
    weights. ``value_range`` is where the model's inputs live (raw units for a
    model that normalises itself).

    2-D images are probed on a ``size`` x ``size`` image. For ``dims=3`` a
    ``size``-cube would cost ``size``**3 voxels through a network whose full-
    resolution stage is 96+ channels wide (gigabytes, minutes on a CPU), so the
    probe is a thin (``size``, ``multiple``, ``multiple``) volume, measuring the
    radius along D only: the 3-D models are isotropic (cubic kernels, equal strides
    on every axis), so it is the radius along H and W too, and the extent along
    one axis does not depend on how wide the others are.
    """
    size = int(math.ceil(size / multiple) * multiple)
    low, high = value_range
    rng = np.random.default_rng(0)
    probed = 2 if dims == 2 else 1
    shape = (1, *[size] * probed, *[multiple] * (dims - probed), depth)
    x = (low + (high - low) * rng.random(shape)).astype(np.float32)
    bumped = x.copy()
    start, stop = size // 2, size // 2 + multiple
    bumped[(0, *[slice(start, stop)] * probed)] += 0.5 * (high - low)
    changed = np.abs(predict(bumped) - predict(x))[0, ..., 0] > 0
    where = np.nonzero(changed)[:probed]
    if where[0].size == 0:
        raise ValueError("the model's output does not depend on its input")
    radius = max(max(start - w.min(), w.max() - (stop - 1)) for w in where)
    return int(math.ceil((radius + 1) / multiple) * multiple)


def _profile(length: int, margin: int, ramp: int, start_inside: bool, end_inside: bool):
    """1-D tile weights: 0 over ``margin``, a raised-cosine ``ramp``, then 1 (per inner edge)."""
    w = np.ones(length, np.float32)
    t = (np.arange(ramp, dtype=np.float32) + 0.5) / max(ramp, 1)
    rise = np.concatenate([np.zeros(margin, np.float32), 0.5 - 0.5 * np.cos(np.pi * t)])
    if start_inside:
        w[: rise.size] = rise
    if end_inside:
        w[length - rise.size :] = np.minimum(w[length - rise.size :], rise[::-1])
    return w


def _starts(length: int, tile: int, step: int) -> list[int]:
    """Tile origins, ``step`` apart, the last flush with the end, covering [0, length)."""
    if length <= tile:
        return [0]
    return sorted({*range(0, length - tile, step), length - tile})


def tile_grid(
    spatial: tuple[int, ...], tile: int, margin: int, multiple: int
) -> tuple[list[list[int]], list[int], int]:
    """Tile origins per axis, tile sizes per axis and the blending ramp.

    One tile (the whole input) when every side fits in ``tile``; otherwise
    `ValueError` when ``tile`` leaves no room between the margins.
    """
    if all(s <= tile for s in spatial):
        return [[0] for _ in spatial], list(spatial), 0
    ramp = max(multiple, margin // 2 // multiple * multiple)
    if tile < 2 * margin + ramp + multiple:
        raise ValueError(f"tile {tile} is too small for a margin of {margin} pixels")
    step = tile - 2 * margin - ramp
    sizes = [min(tile, s) for s in spatial]
    return [_starts(s, t, step) for s, t in zip(spatial, sizes, strict=True)], sizes, ramp


def blend_tiles(
    predict: Callable[[np.ndarray], np.ndarray],
    read: Callable[[Region], np.ndarray],
    shape: tuple[int, ...],
    tile: int,
    margin: int,
    multiple: int,
    on_tile: Callable[[], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Predict an input of ``shape`` (batch, *spatial) tile by tile; yield finished blocks.

    ``read(region)`` returns the input (batch, *tile, C) under ``region``, one slice
    per spatial axis; tiles are read in order of their start on the first spatial
    axis. Yields ``(start, block)`` along that axis, in order and covering it once,
    each block (batch, k, *spatial[1:], 1) as soon as no later tile overlaps it.
    Within ``margin`` of a tile edge that lies inside the input, a tile's output is
    not trusted (weight 0); over the next ``margin // 2`` pixels its weight rises
    smoothly to 1, where the neighbouring tile's weight falls. Sizes, ``tile`` and
    ``margin`` are multiples of ``multiple`` (pad first), so every tile sits on the
    network's pooling grid. Memory grows with the tile and the first axis' tile
    size, not with the input. ``on_tile`` is called after each forward pass.
    """
    batch, *spatial = shape
    starts, sizes, ramp = tile_grid(tuple(spatial), tile, margin, multiple)
    first, rest = starts[0], starts[1:]
    depth = sizes[0]
    out = np.zeros((batch, depth, *spatial[1:], 1), np.float32)
    total = np.zeros((depth, *spatial[1:], 1), np.float32)
    for i, z in enumerate(first):
        profiles = [_profile(depth, margin, ramp, z > 0, z + depth < spatial[0])]
        for origin in itertools.product(*rest):
            region = tuple(slice(o, o + t) for o, t in zip(origin, sizes[1:], strict=True))
            edges = zip(origin, sizes[1:], spatial[1:], strict=True)
            weight = functools.reduce(
                np.multiply.outer,
                profiles + [_profile(t, margin, ramp, o > 0, o + t < s) for o, t, s in edges],
            )[..., None]
            pred = predict(read((slice(z, z + depth), *region)))
            out[(slice(None), slice(None), *region)] += pred * weight
            total[(slice(None), *region)] += weight
            if on_tile is not None:
                on_tile()
        done = first[i + 1] - z if i + 1 < len(first) else depth
        yield z, out[:, :done] / total[:done]
        # Slide the accumulators, in place, to start at the next tile's origin.
        out[:, : depth - done], out[:, depth - done :] = out[:, done:], 0.0
        total[: depth - done], total[depth - done :] = total[done:], 0.0


def predict_tiled(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    tile: int,
    margin: int,
    multiple: int,
    on_tile: Callable[[], None] | None = None,
) -> np.ndarray:
    """Apply ``predict`` to (batch, *spatial, C) images or volumes in blended tiles.

    The in-memory form of `blend_tiles` (see there for the window); an input no
    larger than ``tile`` on every side goes through ``predict`` whole.
    """
    if all(s <= tile for s in images.shape[1:-1]):
        return predict(images)
    blocks = blend_tiles(
        predict,
        lambda region: images[(slice(None), *region)],
        images.shape[:-1],
        tile,
        margin,
        multiple,
        on_tile,
    )
    return np.concatenate([block for _, block in blocks], axis=1)
