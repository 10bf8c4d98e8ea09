"""Streaming stacks through a `Predictor`: bounded memory for inputs of any size.

A 2-D model denoises a stack a batch of slices at a time (each with its ``depth``
neighbours, reflected at the stack's ends); a 3-D model sees the stack as one volume
and takes it in overlapping z-slabs, each tiled in cubes, finishing slices front to
back. Either way results reach ``write(start, data)`` in slice order, so a sink can
write them straight to disk, and each slice is read from the source once (2-D: per
batch that needs it).

Sources are image stacks (`tomogan_tf.data.sources.ImageStack`: files, DICOM series, Data
Exchange projections, arrays in memory); only ``path``, ``shape``, ``single_image``
and ``read(indices)`` are used.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import keras
import numpy as np

from tomogan_tf.data.normalization import Normalizer
from tomogan_tf.data.sources import ImageStack
from tomogan_tf.errors import InputError
from tomogan_tf.inference.predict import Predictor
from tomogan_tf.inference.tiling import Region, blend_tiles, tile_grid
from tomogan_tf.models.padding import mirror_index, pad_to_multiple_nd

# Pixels per forward pass when choosing how many slices to denoise at once.
PIXELS_PER_BATCH = 2**21

Write = Callable[[int, np.ndarray], None]


def slices_per_batch(predictor: Predictor, height: int, width: int, batch_size: int | None) -> int:
    """``batch_size``, or as many slices as make about `PIXELS_PER_BATCH` a pass per
    device the batch is split over."""
    if batch_size:
        return batch_size
    pixels = min(height, predictor.tile) * min(width, predictor.tile)
    return max(1, PIXELS_PER_BATCH // pixels) * predictor.replicas


def stream_slices(
    predictor: Predictor,
    source: ImageStack,
    write: Write,
    batch_size: int | None = None,
    progress: bool = False,
) -> None:
    """Denoise a stack with a 2-D model, ``batch_size`` slices (default: ~2 Mpixel) a pass."""
    n, height, width = source.shape
    if predictor.inference == "jinv" and n < predictor.depth:
        raise InputError(
            source.path,
            f"{n} slice(s) are fewer than the model's --depth {predictor.depth}: the neighbours"
            " of a slice would include the slice itself, which J-invariant inference hides",
        )
    batch = slices_per_batch(predictor, height, width, batch_size)
    bar = keras.utils.Progbar(n, unit_name="slice") if progress else None
    for start in range(0, n, batch):
        indices = list(range(start, min(n, start + batch)))
        neighbours = [source.neighbours(i, predictor.depth) for i in indices]
        needed = sorted({j for group in neighbours for j in group})
        slices = dict(zip(needed, source.read(needed), strict=True))
        stacks = np.stack([np.stack([slices[j] for j in g], axis=-1) for g in neighbours])
        names = [f"{source.path}: slice {i}" for i in indices]
        write(start, predictor.denoise_batch(stacks, names))
        if bar is not None:
            bar.add(len(indices))
    predictor.report_passed_through(source.path)


def stream_volume(
    predictor: Predictor, source: ImageStack, write: Write, progress: bool = False
) -> None:
    """Denoise a stack as one volume, a z-slab of at most ``tile`` slices at a time.

    The volume is mirror-padded to multiples of ``multiple`` (along D by reading
    mirrored slice indices) and tiled in cubes by `blend_tiles`, which releases
    slices front to back as soon as no later slab overlaps them. Memory: about
    four slabs of ``tile`` slices (input raw and normalised, blended sum and
    weights) and one cube's forward pass; each slice is read once.
    """
    p = predictor
    n, height, width = source.shape
    if getattr(source, "single_image", False):
        raise InputError(
            source.path, "a 3-D model denoises volumes (N, H, W), not a single (H, W) image"
        )
    p.check_size(height, width)
    padded = tuple(-(-s // p.multiple) * p.multiple for s in (n, height, width))
    p.check_tile(padded)
    margin = p.margin if max(padded) > p.tile else 0
    starts, _, _ = tile_grid(padded, p.tile, margin, p.multiple)
    bar = None
    if progress:
        bar = keras.utils.Progbar(math.prod(len(s) for s in starts), unit_name="tile")
    slab: dict = {"start": None, "data": None, "raw": {}}
    windows: dict[int, Normalizer | None] = {}  # per slice (a few floats each)

    def read(region: Region) -> np.ndarray:
        z = region[0]
        if slab["start"] != z.start:  # the next slab: read only the slices not held yet
            indices = [int(i) for i in mirror_index(np.arange(z.start, z.stop), n)]
            wanted = set(indices)
            held = {i: s for i, s in slab["raw"].items() if i in wanted}
            missing = sorted(wanted - set(held))
            if missing:
                slices = source.read(missing)
                held.update(zip(missing, slices, strict=True))
                names = [f"{source.path}: slice {i}" for i in missing]
                windows.update(zip(missing, p.windows(slices, names), strict=True))
            x = np.stack([held[i] for i in indices])
            if p.normalization is not None:  # each slice by its own window
                x = np.stack([p.to_network(windows[i], s) for i, s in zip(indices, x, strict=True)])
            x = x[None, ..., None]
            slab.update(
                start=z.start,
                raw=held,
                data=pad_to_multiple_nd(x, p.multiple, (2, 3))[0].numpy(),
            )
        return slab["data"][(slice(None), slice(None), *region[1:])]

    blocks = blend_tiles(
        p.predict,
        read,
        (1, *padded),
        p.tile,
        margin,
        p.multiple,
        on_tile=None if bar is None else lambda: bar.add(1),
    )
    for start, block in blocks:
        y = block[0, : max(0, n - start), :height, :width, 0]
        if len(y):
            out = np.empty(y.shape, np.float32)
            for k, image in enumerate(y):
                window = windows[start + k]
                # An image that could not be mapped is re-read: the slab may be gone.
                raw = source.read([start + k])[0] if window is None else None
                out[k] = p.from_network(window, image, raw)
            write(start, out)
    p.report_passed_through(source.path)
