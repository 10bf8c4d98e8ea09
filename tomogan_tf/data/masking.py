"""J-invariant masking for Noise2Self / blind-spot training on noisy images alone.

A denoiser trained to reproduce its noisy input learns the identity. Noise2Self
(Batson & Royer 2019) hides a set J of pixels from the network and scores its
prediction only there: if the noise is independent from pixel to pixel and
zero-mean, the best prediction of a hidden noisy pixel from the others is the
clean value, so the masked loss trains a denoiser. What makes it work is that
the masked input carries nothing of the hidden pixels' own values; both masks
here guarantee that, and the tests check it by perturbing those values.

``grid``    every pixel whose coordinates are ``phase`` modulo ``period`` along
            every spatial axis (period 4: 1/16 of a 2-D image), the phase cycling
            with the training step as in the seed talk's self2denoise. The hidden
            pixels are replaced by the mean of their 8 (3-D: 26) neighbours, none
            of which is hidden, or by zero (``fill="zero"``, self2denoise's choice).
``random``  Noise2Void-style blind spots: one pixel at a random place in every
            ``cell``-wide cell of a randomly shifted grid, replaced by the value
            of a random neighbour at most ``radius`` away. Hidden pixels are kept
            at least ``2 * radius + 1`` apart, so a replacement never comes from
            another hidden pixel (which would leak that pixel's value).

Only the denoised (centre) channel is masked: the neighbouring slices of a
``--depth`` stack carry independent noise of their own. Inputs are
(batch, *spatial, channels); masks are float (batch, *spatial, 1), 1 where hidden.
"""

from __future__ import annotations

import itertools

import tensorflow as tf

from tomogan_tf.choices import GRID_FILLS, MASKS

GRID_PERIOD = 4
BLIND_SPOT_CELL = 8
BLIND_SPOT_RADIUS = 2


def grid_phases(dims: int, period: int = GRID_PERIOD) -> int:
    """How many grid phases there are; together they hide every pixel exactly once."""
    return period**dims


def grid_mask(spatial_shape, phase, period: int = GRID_PERIOD) -> tf.Tensor:
    """(*spatial) float mask of the pixels at ``phase`` of the ``period`` grid.

    ``phase`` in ``[0, period**dims)`` is read as one digit per axis, first axis first.

    >>> grid_mask((4, 4), 5).numpy().astype(int).tolist()
    [[0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    """
    dims = len(spatial_shape)
    phase = tf.cast(phase, tf.int32) % grid_phases(dims, period)
    mask = tf.ones((), tf.bool)
    for axis in range(dims):
        digit = phase // period ** (dims - 1 - axis) % period
        on_axis = tf.range(spatial_shape[axis]) % period == digit
        shape = [1] * dims
        shape[axis] = -1
        mask = mask & tf.reshape(on_axis, shape)
    return tf.cast(mask, tf.float32)


def _neighbour_mean(image: tf.Tensor) -> tf.Tensor:
    """Mean of each pixel's 3**d - 1 neighbours, reflected (never itself) at the borders."""
    dims = len(image.shape) - 2
    padded = tf.pad(image, [[0, 0]] + [[1, 1]] * dims + [[0, 0]], mode="REFLECT")
    total = tf.zeros_like(image)
    for offset in itertools.product((0, 1, 2), repeat=dims):
        if offset == (1,) * dims:
            continue
        index = tuple(slice(o, o + tf.shape(image)[1 + a]) for a, o in enumerate(offset))
        total += padded[(slice(None), *index)]
    return total / (3**dims - 1)


def _centre(x: tf.Tensor) -> tuple[tf.Tensor, int]:
    centre = x.shape[-1] // 2
    return x[..., centre : centre + 1], centre


def _replace_centre(x: tf.Tensor, centre: int, values: tf.Tensor) -> tf.Tensor:
    return tf.concat([x[..., :centre], values, x[..., centre + 1 :]], axis=-1)


def apply_grid_mask(
    x: tf.Tensor, phase, fill: str = "mean", period: int = GRID_PERIOD, zero: float = 0.0
):
    """``(masked_input, mask)``: grid phase ``phase`` hidden in the centre channel of ``x``.

    ``zero`` is the value ``fill="zero"`` writes (0 in normalised units; or one per
    image, broadcast against ``x``, for raw-unit models that normalise each image).
    """
    if fill not in GRID_FILLS:
        raise ValueError(f"fill must be one of {GRID_FILLS}, got {fill!r}")
    x = tf.convert_to_tensor(x, tf.float32)
    image, centre = _centre(x)
    spatial = tf.shape(x)[1:-1]
    dims = len(x.shape) - 2
    mask = grid_mask([spatial[a] for a in range(dims)], phase, period)
    mask = tf.broadcast_to(mask[None, ..., None], tf.shape(image))
    replacement = (
        _neighbour_mean(image)
        if fill == "mean"
        else tf.zeros_like(image) + tf.cast(zero, image.dtype)
    )
    return _replace_centre(x, centre, tf.where(mask > 0, replacement, image)), mask


def apply_blind_spots(
    x: tf.Tensor,
    seed,
    cell: int = BLIND_SPOT_CELL,
    radius: int = BLIND_SPOT_RADIUS,
):
    """``(masked_input, mask)``: Noise2Void blind spots in the centre channel of ``x``.

    ``seed`` is a stateless seed (two integers), so a resumed run draws the same
    masks. Needs ``cell >= 2 * radius + 2``: a spot lies ``radius`` or more from
    its cell's edges, so two spots are at least ``2 * radius + 1`` apart and the
    neighbour replacing one is never another. The grid of cells is shifted at
    random per image, so spots fall on every phase of the network's pooling grid.
    """
    if cell < 2 * radius + 2:
        raise ValueError(f"cell {cell} is too small for blind spots of radius {radius}")
    x = tf.convert_to_tensor(x, tf.float32)
    image, centre = _centre(x)
    dims = len(x.shape) - 2
    shape = tf.shape(image)[:-1]  # (batch, *spatial)
    batch, spatial = shape[0], [shape[1 + a] for a in range(dims)]
    shift_seed, place_seed, offset_seed = tf.unstack(
        tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 3)
    )
    # Per-cell draws: where the spot sits in its cell and which neighbour replaces it.
    cells = tf.stack([batch, *[s // cell + 2 for s in spatial], dims])
    place = tf.random.stateless_uniform(cells, place_seed, radius, cell - radius, tf.int32)
    offset = tf.random.stateless_uniform(cells, offset_seed, -radius, radius + 1, tf.int32)
    shift = tf.random.stateless_uniform([batch, dims], shift_seed, 0, cell, tf.int32)
    # Every pixel's cell and place in it, per axis: (batch, *spatial, dims).
    grid = tf.stack(tf.meshgrid(*[tf.range(s) for s in spatial], indexing="ij"), axis=-1)
    shifted = grid[None] + tf.reshape(shift, [-1] + [1] * dims + [dims])
    batch_index = tf.broadcast_to(tf.reshape(tf.range(batch), [-1] + [1] * dims + [1]),
                                  tf.concat([shape, [1]], 0))  # fmt: skip
    cell_index = tf.concat([batch_index, shifted // cell], axis=-1)
    hit = tf.reduce_all(tf.equal(shifted % cell, tf.gather_nd(place, cell_index)), axis=-1)
    delta = tf.gather_nd(offset, cell_index)
    # A zero offset would copy the spot onto itself: step along the first axis instead.
    is_self = tf.reduce_all(tf.equal(delta, 0), axis=-1, keepdims=True)
    first_axis = tf.one_hot(0, dims, dtype=tf.int32)
    delta = tf.where(is_self, first_axis, delta)
    # An offset leaving the image is reversed on that axis (it stays within radius).
    target = grid[None] + delta
    outside = (target < 0) | (target >= tf.stack(spatial))
    target = tf.where(outside, grid[None] - delta, target)
    neighbours = tf.gather_nd(image[..., 0], tf.concat([batch_index, target], axis=-1))
    mask = tf.cast(hit, tf.float32)[..., None]
    return _replace_centre(x, centre, tf.where(mask > 0, neighbours[..., None], image)), mask


def apply_mask(x, kind: str, step, seed: int = 0, fill: str = "mean"):
    """``(masked_input, mask)`` for training step ``step`` with mask ``kind``.

    ``grid`` cycles its phase with ``step``; ``random`` draws fresh spots from
    ``(seed, step)``.
    """
    if kind == "grid":
        return apply_grid_mask(x, step, fill)
    if kind == "random":
        return apply_blind_spots(x, tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)]))
    raise ValueError(f"mask must be one of {MASKS}, got {kind!r}")


def jinvariant_predict(
    predict, x, period: int = GRID_PERIOD, fill: str = "mean", zero: float = 0.0
):
    """Noise2Self's J-invariant prediction: every pixel predicted with itself hidden.

    Runs ``predict`` once per grid phase (16 in 2-D, 64 in 3-D) and keeps, from
    each pass, the pixels that phase hid. ``predict`` maps (batch, *spatial, C)
    to (batch, *spatial, 1). Works on NumPy or tensors; returns a NumPy array.
    """
    x = tf.convert_to_tensor(x, tf.float32)
    dims = len(x.shape) - 2
    out = None
    for phase in range(grid_phases(dims, period)):
        masked, mask = apply_grid_mask(x, phase, fill, period, zero)
        pred = tf.convert_to_tensor(predict(masked.numpy()), tf.float32)
        out = pred * mask if out is None else out + pred * mask
    return out.numpy()
