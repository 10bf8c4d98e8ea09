"""Tiled prediction with a smooth blending window, for images of any size.

A fully convolutional denoiser gives the same output for a pixel whether it sees
the whole image or a tile, provided the tile extends at least the network's
receptive-field radius beyond that pixel and the tile grid is aligned with the
network's pooling grid. Tiles here start on multiples of the model's input multiple
and overlap by at least that radius; overlapping predictions are blended with a
raised-cosine window so that any residual disagreement fades smoothly instead of
leaving seams.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np


def receptive_field_radius(
    predict: Callable[[np.ndarray], np.ndarray],
    depth: int,
    multiple: int,
    size: int = 256,
    value_range: tuple[float, float] = (0.0, 1.0),
) -> int:
    """Measure how far from a pixel the input still changes that pixel's output.

    Perturbs a central ``multiple`` x ``multiple`` block of a random image (so every
    phase of the pooling grid is probed) and finds the farthest output pixel that
    moves: an empirical receptive-field radius, rounded up to ``multiple``. It follows
    the network's connectivity, so it holds for any weights. ``value_range`` is
    where the model's inputs live (raw units for a model that normalises itself).
    """
    size = int(math.ceil(size / multiple) * multiple)
    low, high = value_range
    rng = np.random.default_rng(0)
    x = (low + (high - low) * rng.random((1, size, size, depth))).astype(np.float32)
    bumped = x.copy()
    start, stop = size // 2, size // 2 + multiple
    bumped[0, start:stop, start:stop, :] += 0.5 * (high - low)
    changed = np.abs(predict(bumped) - predict(x))[0, ..., 0] > 0
    ys, xs = np.nonzero(changed)
    if ys.size == 0:
        raise ValueError("the model's output does not depend on its input")
    radius = max(start - ys.min(), ys.max() - (stop - 1), start - xs.min(), xs.max() - (stop - 1))
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


def predict_tiled(
    predict: Callable[[np.ndarray], np.ndarray],
    images: np.ndarray,
    tile: int,
    margin: int,
    multiple: int,
) -> np.ndarray:
    """Apply ``predict`` to (batch, H, W, C) images in overlapping tiles and blend them.

    Within ``margin`` of a tile edge that lies inside the image, a tile's output is
    not trusted (weight 0); over the next ``margin // 2`` pixels its weight rises
    smoothly to 1, where the neighbouring tile's weight falls. H, W, ``tile`` and
    ``margin`` are multiples of ``multiple`` (pad first with `pad_to_multiple`), so
    every tile sits on the network's pooling grid. Memory grows with the tile, not
    with the image.
    """
    batch, height, width, _ = images.shape
    if height <= tile and width <= tile:
        return predict(images)
    ramp = max(multiple, margin // 2 // multiple * multiple)
    if tile < 2 * margin + ramp + multiple:
        raise ValueError(f"tile {tile} is too small for a margin of {margin} pixels")
    step = tile - 2 * margin - ramp
    out = np.zeros((batch, height, width, 1), np.float32)
    total = np.zeros((height, width, 1), np.float32)
    tile_h, tile_w = min(tile, height), min(tile, width)
    for y in _starts(height, tile_h, step):
        wy = _profile(tile_h, margin, ramp, y > 0, y + tile_h < height)
        for x in _starts(width, tile_w, step):
            wx = _profile(tile_w, margin, ramp, x > 0, x + tile_w < width)
            weight = np.outer(wy, wx)[..., None]
            pred = predict(images[:, y : y + tile_h, x : x + tile_w, :])
            out[:, y : y + tile_h, x : x + tile_w] += pred * weight
            total[y : y + tile_h, x : x + tile_w] += weight
    return out / total
