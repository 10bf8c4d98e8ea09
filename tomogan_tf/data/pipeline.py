"""tf.data pipelines that stream patches and slices out of HDF5 stacks.

Only the hyperslabs a batch needs are read (``depth`` neighbouring slices times one
patch), so a stack of any size trains in bounded memory. Reads run in parallel
tf.data map calls; normalisation, augmentation, batching and prefetch happen in
the graph.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tomogan_tf.data.hdf5 import H5_LOCK, open_h5, read_slices
from tomogan_tf.data.normalization import Normalizer
from tomogan_tf.errors import InputError


def neighbour_indices(index: int, n: int, depth: int) -> list[int]:
    """Indices of the ``depth`` slices centred on ``index``, reflected at the stack ends.

    Example:
    >>> neighbour_indices(0, 10, 5)
    [2, 1, 0, 1, 2]
    """
    radius = depth // 2
    out = []
    for j in range(index - radius, index + radius + 1):
        if n > 1:
            period = 2 * (n - 1)
            j = j % period
            j = period - j if j >= n else j
        else:
            j = 0
        out.append(j)
    return out


class StackReader:
    """Reads aligned (noisy neighbours, clean centre) regions from one HDF5 file.

    tf.data calls `read` from several threads. Each read opens the file, reads its
    hyperslabs and closes it again under `H5_LOCK`, so that no h5py object outlives
    the lock (see there why); the checks and array work run in parallel. Opening
    costs far less than a training step and keeps no file handle alive between reads.
    """

    def __init__(self, path: str, noisy_key: str, clean_key: str | None, depth: int = 1):
        self.path, self.noisy_key, self.clean_key, self.depth = path, noisy_key, clean_key, depth

    def _read_arrays(self, index: int, region) -> tuple[np.ndarray, np.ndarray]:
        with open_h5(self.path) as f:
            neighbours = neighbour_indices(index, f[self.noisy_key].shape[0], self.depth)
            if neighbours == list(range(neighbours[0], neighbours[-1] + 1)):
                noisy = read_slices(f, self.noisy_key, neighbours[0], neighbours[-1] + 1, region)
            else:
                noisy = np.concatenate(
                    [read_slices(f, self.noisy_key, j, j + 1, region) for j in neighbours]
                )
            clean = read_slices(f, self.clean_key or self.noisy_key, index, index + 1, region)
        return noisy, clean

    def read(self, index, y, x, height, width) -> tuple[np.ndarray, np.ndarray]:
        """Return noisy (height, width, depth) and clean (height, width, 1) float32 arrays."""
        index, y, x, height, width = (int(v) for v in (index, y, x, height, width))
        with H5_LOCK:
            noisy, clean = self._read_arrays(index, np.s_[y : y + height, x : x + width])
        for key, data in ((self.noisy_key, noisy), (self.clean_key or self.noisy_key, clean)):
            if not np.isfinite(data).all():
                raise InputError(
                    self.path, f"dataset '{key}' has NaN or Inf values near slice {index}"
                )
        return np.moveaxis(noisy, 0, -1), np.moveaxis(clean, 0, -1)

    def read_block(self, z, y, x, size) -> tuple[np.ndarray, np.ndarray]:
        """Return aligned noisy and clean (size, size, size, 1) sub-volumes at (z, y, x)."""
        z, y, x, size = (int(v) for v in (z, y, x, size))
        region = np.s_[y : y + size, x : x + size]
        with H5_LOCK, open_h5(self.path) as f:
            noisy = read_slices(f, self.noisy_key, z, z + size, region)
            clean = read_slices(f, self.clean_key or self.noisy_key, z, z + size, region)
        for key, data in ((self.noisy_key, noisy), (self.clean_key or self.noisy_key, clean)):
            if not np.isfinite(data).all():
                raise InputError(
                    self.path, f"dataset '{key}' has NaN or Inf values in slices {z}-{z + size - 1}"
                )
        return noisy[..., None], clean[..., None]


def _read_op(reader: StackReader, index, y, x, height, width, static_hw=(None, None)):
    noisy, clean = tf.numpy_function(
        reader.read, [index, y, x, height, width], [tf.float32, tf.float32], stateful=False
    )
    noisy.set_shape((*static_hw, reader.depth))
    clean.set_shape((*static_hw, 1))
    return noisy, clean


def _read_block_op(reader: StackReader, z, y, x, size: int):
    noisy, clean = tf.numpy_function(
        reader.read_block, [z, y, x, size], [tf.float32, tf.float32], stateful=False
    )
    noisy.set_shape((size, size, size, 1))
    clean.set_shape((size, size, size, 1))
    return noisy, clean


def dihedral(images: list[tf.Tensor], uniform: tf.Tensor) -> list[tf.Tensor]:
    """Apply the same one of the 8 flips/rotations of the (H, W) plane to every image,
    chosen by two U(0,1) draws. Images are (H, W, C), or (D, H, W, C) volumes, whose
    slices all turn together; a third draw, when given, flips volumes along D too."""
    k = tf.cast(tf.floor(uniform[0] * 4.0), tf.int32)
    flip = uniform[1] < 0.5
    flip_depth = uniform[2] < 0.5 if uniform.shape[0] > 2 else tf.constant(False)
    out = []
    for image in images:
        image = tf.image.rot90(image, k)
        image = tf.cond(flip, lambda im=image: tf.reverse(im, [-2]), lambda im=image: im)
        if len(image.shape) == 4:
            image = tf.cond(flip_depth, lambda im=image: tf.reverse(im, [0]), lambda im=image: im)
        out.append(image)
    return out


def patch_dataset(
    reader: StackReader,
    shape: tuple[int, int, int],
    patch_size: int,
    batch_size: int,
    normalizer: Normalizer,
    seed: int = 0,
    group: int = 1,
    augment: bool = True,
    start: int = 0,
    volumes: bool = False,
) -> tf.data.Dataset:
    """An endless stream of random, aligned, augmented training patches.

    Elements are ``(noisy, clean)`` of shapes ``(group, batch, P, P, depth)`` and
    ``(group, batch, P, P, 1)``: ``group`` fresh batches per training iteration
    (generator steps, then discriminator steps). With ``volumes`` the stack is one
    volume and patches are P x P x P sub-volumes, ``(group, batch, P, P, P, 1)``.
    Sample ``k`` of the stream is a pure function of ``(seed, k)``, so a run
    resumed at sample ``start`` sees the same patches as one that never stopped.
    """
    n, height, width = shape

    def sample(counter):
        u = tf.random.stateless_uniform([6], seed=tf.stack([tf.cast(seed, tf.int64), counter]))
        y = tf.cast(u[1] * (height - patch_size + 1), tf.int64)
        x = tf.cast(u[2] * (width - patch_size + 1), tf.int64)
        if volumes:
            z = tf.cast(u[0] * (n - patch_size + 1), tf.int64)
            noisy, clean = _read_block_op(reader, z, y, x, patch_size)
        else:
            index = tf.cast(u[0] * n, tf.int64)
            noisy, clean = _read_op(
                reader, index, y, x, patch_size, patch_size, (patch_size, patch_size)
            )
        noisy, clean = normalizer.apply(noisy), normalizer.apply(clean)
        if augment:
            noisy, clean = dihedral([noisy, clean], u[3:] if volumes else u[3:5])
        return noisy, clean

    ds = tf.data.Dataset.counter(start, dtype=tf.int64)
    ds = ds.map(sample, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.batch(batch_size, drop_remainder=True).batch(group, drop_remainder=True)
    return ds.prefetch(tf.data.AUTOTUNE)


def slice_dataset(
    reader: StackReader,
    shape: tuple[int, int, int],
    indices: list[int] | np.ndarray,
    normalizer: Normalizer,
    batch_size: int = 1,
) -> tf.data.Dataset:
    """Whole slices (with their neighbours) in a fixed order, for validation."""
    _, height, width = shape

    def load(index):
        noisy, clean = _read_op(reader, index, 0, 0, height, width, (height, width))
        return normalizer.apply(noisy), normalizer.apply(clean)

    ds = tf.data.Dataset.from_tensor_slices(np.asarray(indices, dtype=np.int64))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def cube_dataset(
    reader: StackReader,
    shape: tuple[int, int, int],
    count: int,
    size: int,
    normalizer: Normalizer,
) -> tf.data.Dataset:
    """``count`` fixed sub-volumes of side ``size`` for validating 3-D models.

    Their corners are evenly spaced along the stack's diagonal, so they sample top to
    bottom and edge to centre; whole validation volumes would not fit a CPU's memory
    through a 3-D network.
    """
    n, height, width = shape
    count = max(1, count)
    corners = np.stack(
        [np.linspace(0, extent - size, count).astype(np.int64) for extent in (n, height, width)],
        axis=-1,
    )

    def load(corner):
        noisy, clean = _read_block_op(reader, corner[0], corner[1], corner[2], size)
        return normalizer.apply(noisy), normalizer.apply(clean)

    ds = tf.data.Dataset.from_tensor_slices(np.unique(corners, axis=0))
    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(1).prefetch(tf.data.AUTOTUNE)
