"""tf.data pipelines that stream patches and slices out of image stacks.

Only the hyperslabs a batch needs are read (``depth`` neighbouring slices times one
patch), so a stack of any size trains in bounded memory. Reads run in parallel
tf.data map calls and normalise what they read (each slice by its own window under
per-image normalisation, fitted once per slice from the whole noisy slice and
cached); augmentation, batching and prefetch happen in the graph.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

from tomogan_tf.data.normalization import Normalization, Normalizer, UnmappableImage
from tomogan_tf.data.sources import ImageStack, open_hdf5
from tomogan_tf.data.sources.base import neighbour_indices  # noqa: F401  (its old home)
from tomogan_tf.errors import InputError

# Reader calls in flight, one per core up to 8 (each holds a whole iteration's patches:
# 50 MiB at TomoGAN's defaults), and elements read ahead.
READERS = min(8, max(2, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2))
PREFETCH = 2


class StackReader:
    """Reads aligned (noisy neighbours, target centre) regions of two `ImageStack` objects.

    The target is the clean stack (supervised), a second noisy measurement of the
    same scene (Noise2Noise, possibly in another file), or None: the noisy stack's
    own centre slice (Noise2Self). tf.data calls `read` from several threads; the
    stacks make that safe (every h5py object is made and freed under `H5_LOCK`; the
    correction and the finite check run after it, in parallel). Inside `opened` the
    files stay open for all reads, as training keeps them; outside it an HDF5 stack
    opens its file for each read.
    """

    def __init__(self, noisy: ImageStack, target: ImageStack | None = None, depth: int = 1):
        self.noisy, self.target, self.depth = noisy, target, depth
        self._windows: dict[int, Normalizer] = {}  # per-image windows, by slice

    @classmethod
    def open(
        cls, path: str, noisy_key: str, target_key: str | None = None, depth: int = 1
    ) -> StackReader:
        """A reader of two named (N, H, W) stacks of one HDF5 file."""
        noisy = open_hdf5(path, noisy_key, require_stack=True)
        target = open_hdf5(path, target_key, require_stack=True) if target_key else None
        return cls(noisy, target, depth)

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.noisy.shape

    @contextlib.contextmanager
    def opened(self) -> Iterator[StackReader]:
        """Keep the stacks' files open for a series of reads (a training run): a file
        opened per patch costs about as much as reading the patch."""
        with contextlib.ExitStack() as held:
            for stack in (self.noisy, self.target):
                if stack is not None:
                    held.enter_context(stack.opened())
            yield self

    def _read_pair(self, noisy_range, target_range, region, where: str):
        """``noisy_range`` / ``target_range``: (start, stop) or a list of single slices.

        ``where`` says in an error which slices held NaN or Inf. Without a target
        stack the target is None: the caller takes it from the noisy slices already
        read, instead of reading them twice.
        """

        def read(stack: ImageStack, slices):
            if isinstance(slices, tuple):
                return stack.read_range(*slices, region, where=where)
            return stack.read(slices, region, where=where)

        noisy = read(self.noisy, noisy_range)
        target = None if self.target is None else read(self.target, target_range)
        return noisy, target

    def window(self, index: int, normalization: Normalization) -> Normalizer:
        """The map of slice ``index`` and its target: from the whole noisy slice.

        A fixed `Normalizer` is its own window. Per-image windows are computed on first
        use and cached (a slice's window is a pure function of the slice).
        """
        if isinstance(normalization, Normalizer):
            return normalization
        window = self._windows.get(index)
        if window is None:
            image = self.noisy.read_range(index, index + 1, where=f"in slice {index}")[0]
            try:
                window = normalization.for_image(image)
            except UnmappableImage as err:
                raise InputError(
                    self.noisy.path, f"{self.noisy.describe()}: slice {index} {err}"
                ) from None
            self._windows[index] = window
        return window

    def read(
        self, index, y, x, height, width, normalization: Normalization | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return noisy (height, width, depth) and target (height, width, 1) float32 arrays.

        With ``normalization`` both are mapped by the centre slice's window.
        """
        index, y, x, height, width = (int(v) for v in (index, y, x, height, width))
        neighbours = self.noisy.neighbours(index, self.depth)
        if neighbours == list(range(neighbours[0], neighbours[-1] + 1)):
            neighbours = (neighbours[0], neighbours[-1] + 1)
        region = np.s_[y : y + height, x : x + width]
        noisy, target = self._read_pair(
            neighbours, (index, index + 1), region, f"near slice {index}"
        )
        if target is None:  # Noise2Self: the centre slice itself
            centre = self.depth // 2
            target = noisy[centre : centre + 1]
        if normalization is not None:
            window = self.window(index, normalization)
            noisy, target = window.apply(noisy), window.apply(target)
        return np.moveaxis(noisy, 0, -1), np.moveaxis(target, 0, -1)

    def read_block(
        self, z, y, x, size, normalization: Normalization | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Return aligned noisy and target (size, size, size, 1) sub-volumes at (z, y, x).

        With ``normalization`` each slice (noisy and target) is mapped by its own window.
        """
        z, y, x, size = (int(v) for v in (z, y, x, size))
        region = np.s_[y : y + size, x : x + size]
        where = f"in slices {z}-{z + size - 1}"
        noisy, target = self._read_pair((z, z + size), (z, z + size), region, where)
        target = noisy if target is None else target
        if normalization is not None:
            windows = [self.window(z + k, normalization) for k in range(size)]
            noisy = np.stack([w.apply(s) for w, s in zip(windows, noisy, strict=True)])
            target = np.stack([w.apply(s) for w, s in zip(windows, target, strict=True)])
        return noisy[..., None], target[..., None]


def _read_op(
    reader: StackReader,
    normalization: Normalization,
    index,
    y,
    x,
    height,
    width,
    static_hw=(None, None),
):
    def read(*args):
        return reader.read(*args, normalization=normalization)

    noisy, clean = tf.numpy_function(
        read, [index, y, x, height, width], [tf.float32, tf.float32], stateful=False
    )
    noisy.set_shape((*static_hw, reader.depth))
    clean.set_shape((*static_hw, 1))
    return noisy, clean


def _read_block_op(reader: StackReader, normalization: Normalization, z, y, x, size: int):
    def read(*args):
        return reader.read_block(*args, normalization=normalization)

    noisy, clean = tf.numpy_function(
        read, [z, y, x, size], [tf.float32, tf.float32], stateful=False
    )
    noisy.set_shape((size, size, size, 1))
    clean.set_shape((size, size, size, 1))
    return noisy, clean


def aligned_empty(shape: tuple[int, ...], alignment: int = 64) -> np.ndarray:
    """An uninitialised float32 array whose data starts on an ``alignment``-byte boundary.

    TensorFlow takes a `tf.numpy_function` result this aligned as its tensor's memory;
    any other it copies, which cost 0.7 ms a 256x256x3 patch here (bench/HISTORY.md).
    """
    size = int(np.prod(shape))
    buffer = np.empty(size + alignment // 4, np.float32)
    start = (-buffer.ctypes.data % alignment) // 4
    return buffer[start : start + size].reshape(shape)


def dihedral(image: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """One of the 8 flips/rotations of the (H, W) plane of an (H, W, C) image, chosen by
    two U(0,1) draws; of a (D, H, W, C) volume all slices turn together, and a third
    draw, when given, flips it along D too. A view: the caller's copy makes it real."""
    plane = (0, 1) if image.ndim == 3 else (1, 2)
    out = np.rot90(image, int(np.floor(draws[0] * np.float32(4.0))), axes=plane)
    if draws[1] < 0.5:
        out = out[..., ::-1, :]
    if image.ndim == 4 and len(draws) > 2 and draws[2] < 0.5:
        out = out[::-1]
    return out


def loaded(ds: tf.data.Dataset, load, batch_size: int | None = None) -> tf.data.Dataset:
    """``ds`` mapped by ``load`` with one call per core in parallel, in order, then
    batched (if ``batch_size``) and prefetched, with tf.data's autotuner switched off.

    TF 2.21 destroys an iterator only when its tuning thread next wakes, and that thread
    sleeps 10 ms, then twice as long each time, up to a minute. With the autotuner on,
    every `fit` call and every validation pass ended on the next 10 x (2^n - 1) ms (a
    1.4 s `fit` took 2.55 s) and a long run could wait a minute at its end; fixed
    parallelism delivers as many patches (bench/RESULTS.md, "tf.data's tuning thread").
    """
    ds = ds.map(load, num_parallel_calls=READERS, deterministic=True)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(PREFETCH).with_options(options)


def patch_dataset(
    reader: StackReader,
    patch_size: int,
    batch_size: int,
    normalization: Normalization,
    seed: int = 0,
    group: int = 1,
    augment: bool = True,
    start: int = 0,
    volumes: bool = False,
    replicas: tuple[tuple[int, ...], int] = ((0,), 1),
) -> tf.data.Dataset:
    """An endless stream of random, aligned, augmented training patches.

    Elements are ``(noisy, clean)`` of shapes ``(group, batch, P, P, depth)`` and
    ``(group, batch, P, P, 1)``: ``group`` fresh batches per training iteration
    (generator steps, then discriminator steps). With ``volumes`` the stack is one
    volume and patches are P x P x P sub-volumes, ``(group, batch, P, P, P, 1)``.
    Sample ``k`` of the stream is a pure function of ``(seed, k)``, so a run
    resumed at sample ``start`` sees the same patches as one that never stopped.

    ``replicas = (ids, count)``: the stream of the replicas ``ids`` of ``count``
    training in sync (`tomogan_tf.training.distribute`), each iteration one element per
    replica in turn, holding that replica's share of every batch: ``batch / count``
    samples, the ``id``-th such part of what one device would train on. So the
    replicas of all workers together read every sample once, none twice, and a step
    on ``count`` devices sees the same patches as a step on one.

    The places and transforms are drawn in the graph; an element's patches are then
    read, normalised, turned and packed by one Python call, into memory TensorFlow
    takes without a copy (`aligned_empty`). With a call and a copy per patch the
    pipeline spent 3.5 CPU ms a patch, against 0.8 ms for the reads themselves
    (bench/HISTORY.md).
    """
    n, height, width = reader.shape
    ids, n_replicas = replicas
    if batch_size % n_replicas:
        raise InputError(
            reader.noisy.path,
            f"--mbsz {batch_size} does not split evenly over {n_replicas} replicas;"
            " give a multiple of the replica count (--mbsz is the global batch)",
        )
    batch_size //= n_replicas
    count = batch_size * group
    side = (patch_size,) * (3 if volumes else 2)
    channels = 1 if volumes else reader.depth

    def place(counter):
        u = tf.random.stateless_uniform([6], seed=tf.stack([tf.cast(seed, tf.int64), counter]))
        first = u[0] * ((n - patch_size + 1) if volumes else n)
        y, x = u[1] * (height - patch_size + 1), u[2] * (width - patch_size + 1)
        corner = tf.cast(tf.stack([first, y, x]), tf.int64)
        return corner, u[3:] if volumes else u[3:5]

    def read(corners: np.ndarray, draws: np.ndarray):
        noisy = aligned_empty((count, *side, channels))
        clean = aligned_empty((count, *side, 1))
        for i, (first, y, x) in enumerate(corners):
            if volumes:
                pair = reader.read_block(first, y, x, patch_size, normalization)
            else:
                pair = reader.read(first, y, x, patch_size, patch_size, normalization)
            for out, image in zip((noisy[i], clean[i]), pair, strict=True):
                image = dihedral(image, draws[i]) if augment else image
                for c in range(image.shape[-1]):  # a channel at a time: 3x faster than
                    out[..., c] = image[..., c]  # one copy from the slice-major reads
        return noisy, clean

    def load(corners, draws):
        noisy, clean = tf.numpy_function(
            read, [corners, draws], [tf.float32, tf.float32], stateful=False
        )
        return (
            tf.reshape(noisy, (group, batch_size, *side, channels)),
            tf.reshape(clean, (group, batch_size, *side, 1)),
        )

    if n_replicas == 1:
        ds = tf.data.Dataset.counter(start, dtype=tf.int64)
    else:
        ds = _replica_samples(start, group, batch_size, ids, n_replicas)
    ds = ds.map(place)
    return loaded(ds.batch(count, drop_remainder=True), load)


def _replica_samples(
    start: int, group: int, share: int, ids: tuple[int, ...], n_replicas: int
) -> tf.data.Dataset:
    """Sample numbers of ``ids``' shares, from global sample ``start`` (a step boundary).

    Step ``t``'s samples are ``t * group * batch + g * batch + j`` (``batch = share *
    n_replicas``) for its ``group`` batches ``g``; replica ``r`` takes ``j`` in
    ``r * share ... (r + 1) * share``.
    """
    batch = share * n_replicas
    offsets = np.array(
        [[g * batch + r * share + j for g in range(group) for j in range(share)] for r in ids],
        dtype=np.int64,
    )  # (local replicas, group * share)
    steps = tf.data.Dataset.counter(start // (group * batch), dtype=tf.int64)
    per_replica = steps.map(lambda t: t * group * batch + tf.constant(offsets))
    return per_replica.unbatch().unbatch()


def slice_dataset(
    reader: StackReader,
    indices: list[int] | np.ndarray,
    normalization: Normalization,
    batch_size: int = 1,
    with_index: bool = False,
) -> tf.data.Dataset:
    """Whole slices (with their neighbours) in a fixed order, for validation.

    With ``with_index`` elements are ``(noisy, target, k)``, ``k`` the slice's place
    in ``indices``: Noise2Self validation hides a different mask in each slice.
    """
    _, height, width = reader.shape

    def load(index, k):
        loaded = _read_op(reader, normalization, index, 0, 0, height, width, (height, width))
        return (*loaded, k) if with_index else loaded

    indices = np.asarray(indices, dtype=np.int64)
    ds = tf.data.Dataset.from_tensor_slices((indices, np.arange(len(indices), dtype=np.int64)))
    return loaded(ds, load, batch_size)


def cube_dataset(
    reader: StackReader,
    count: int,
    size: int,
    normalization: Normalization,
    with_index: bool = False,
) -> tf.data.Dataset:
    """``count`` fixed sub-volumes of side ``size`` for validating 3-D models.

    Their corners are evenly spaced along the stack's diagonal, so they sample top to
    bottom and edge to centre; whole validation volumes would not fit a CPU's memory
    through a 3-D network. ``with_index`` as for `slice_dataset`.
    """
    n, height, width = reader.shape
    count = max(1, count)
    corners = np.stack(
        [np.linspace(0, extent - size, count).astype(np.int64) for extent in (n, height, width)],
        axis=-1,
    )

    corners = np.unique(corners, axis=0)
    indexed = np.concatenate([corners, np.arange(len(corners))[:, None]], axis=1)

    def load(corner):
        loaded = _read_block_op(reader, normalization, corner[0], corner[1], corner[2], size)
        return (*loaded, corner[3]) if with_index else loaded

    return loaded(tf.data.Dataset.from_tensor_slices(indexed), load, 1)
