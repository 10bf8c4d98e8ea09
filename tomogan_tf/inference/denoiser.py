"""Denoise NumPy arrays and files of any size with a trained model: the one entry point.

`Denoiser.load` accepts a training run directory, a ``.keras`` generator (with the
run's ``config.json`` beside it), an exported SavedModel, or nothing (the shipped
pretrained model). Images go through the model's normalisation, are reflect-padded
to what the network needs, denoised whole or in blended tiles, cropped back and
returned in the input's units.

2-D models denoise a stack slice by slice (with ``depth`` neighbours as channels);
3-D models (``adl3d``) treat the whole (N, H, W) stack as one volume and stream it
through in overlapping z-slabs, each tiled in cubes.

This class only puts the parts together, so that one object carries a model from
the disk to the data: `tomogan_tf.inference.loaders` reads models,
`tomogan_tf.inference.predict` runs the network on raw-unit images (the `Predictor`
it extends) and `tomogan_tf.inference.streaming` feeds it stacks and volumes.

Example:
>>> den = Denoiser.load("runs/demo")                     # doctest: +SKIP
>>> clean = den(noisy_stack)  # (N, H, W) or (H, W) NumPy  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from tomogan_tf.data.normalization import Normalization
from tomogan_tf.data.sources import ArrayStack, ImageStack
from tomogan_tf.data.sources.splits import SplitReconstructions, average_groups
from tomogan_tf.errors import InputError
from tomogan_tf.inference.loaders import (
    DEFAULT_MODEL,
    METADATA_FILE,
    TRAINED_DEFAULTS,
    load_model,
    shipped_models_dir,
)
from tomogan_tf.inference.predict import (
    DEFAULT_TILE,
    INFERENCE,
    MAX_MARGIN_3D,
    Predictor,
    check_dims,
)
from tomogan_tf.inference.streaming import PIXELS_PER_BATCH, stream_slices, stream_volume
from tomogan_tf.utils.precision import FLOAT32, Precision

# What `Denoiser.load` computes in unless told: `tomogan_tf.utils.precision.resolve`.
DEFAULT_PRECISION = "auto"

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_TILE",
    "INFERENCE",
    "MAX_MARGIN_3D",
    "METADATA_FILE",
    "PIXELS_PER_BATCH",
    "TRAINED_DEFAULTS",
    "Denoiser",
    "shipped_models_dir",
]


class Denoiser(Predictor):
    """Applies a denoising model to images, stacks and files, in tiles when large.

    Args:
        predict: maps normalised (batch, H, W, depth) float32 to (batch, H, W, 1);
            for ``dims=3``, (batch, D, H, W, 1) to the same shape.
        normalization: how raw images are mapped to the network's units and back
            (`PerImageNormalization`: each image by its own percentiles; a fixed
            `Normalizer`); None when ``predict`` works in raw units (a SavedModel,
            which normalises inside its graph).
        depth: neighbouring slices the model reads (odd; 1 for 3-D models).
        multiple: sizes the model needs to divide (H, W; and D in 3-D).
        tile: largest tile side (a cube's in 3-D); bigger inputs are tiled.
            Default: `DEFAULT_TILE` for ``dims``.
        margin: pixels of overlap context per tile edge; default: measured
            receptive-field radius of the model (at most `MAX_MARGIN_3D` in 3-D).
        batch_size: slices per forward pass (2-D only); default: ~2 Mpixel a pass.
        dims: 2 for slice-by-slice models, 3 for volumetric ones.
        inference: ``"direct"`` (one pass), ``"jinv"``: Noise2Self's J-invariant
            prediction, every pixel predicted with itself hidden by the period-4 grid,
            one pass per grid phase (16), or ``"n2i"``: Noise2Inverse's, for sources
            that are K sub-reconstructions (`SplitReconstructions`): each mean of K - 1
            of them denoised and the K results averaged; 2-D models only.
        trained: how the model was trained, from its run's config (`TRAINED_DEFAULTS`
            for what is not recorded): ``mode``, ``layout``, ``minus_log`` and
            ``flat_field`` (the input its data came in), ``mask``, ``mask_fill``.
        strict: an image the normalisation cannot map (constant; far outside a fixed
            window) raises `InputError` instead of a warning and a pass-through.
        window: the normalisation the model was trained with, for scoring and
            margin probing (default: ``normalization``; a SavedModel's metadata).
    """

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        normalization: Normalization | None,
        depth: int = 1,
        multiple: int = 8,
        tile: int | None = None,
        margin: int | None = None,
        batch_size: int | None = None,
        name: str = "model",
        generator: keras.Model | None = None,
        dims: int = 2,
        inference: str = "direct",
        trained: dict | None = None,
        strict: bool = False,
        window: Normalization | None = None,
    ):
        check_dims(dims, name)
        if dims == 3 and batch_size is not None:
            raise InputError(
                None, "--batch applies to 2-D models; a 3-D model takes one cube a pass (--tile)"
            )
        self.trained = {**TRAINED_DEFAULTS, **(trained or {})}
        super().__init__(
            predict,
            normalization,
            depth=depth,
            multiple=multiple,
            tile=tile,
            margin=margin,
            name=name,
            dims=dims,
            inference=inference,
            mask_fill=self.trained["mask_fill"],
            strict=strict,
            window=window,
        )
        self.batch_size = batch_size
        self.generator = generator  # the Keras model, when loaded from one (for export)
        self.precision = Precision(FLOAT32, "as given")  # `load` records what it chose

    @classmethod
    def load(
        cls,
        model: str | None = None,
        precision: str = DEFAULT_PRECISION,
        strategy: str = "none",
        **options: Any,
    ) -> Denoiser:
        """Load a run directory, ``.keras`` file or SavedModel (None: the shipped model).

        ``options`` are the constructor's (``tile``, ``margin``, ``batch_size``,
        ``inference``, ``strict``); a SavedModel's recorded margin is used unless
        ``margin`` is given.
        ``precision`` (default ``"auto"``: see `tomogan_tf.utils.precision.resolve`)
        is the compute precision of a Keras model; outputs are float32 either way.
        ``strategy``: ``mirrored`` splits every batch over this machine's GPUs (the
        default batch grows with them), ``auto`` does when there are several.
        """
        loaded = load_model(model, precision, strategy)
        if options.get("margin") is None and loaded.margin is not None:
            options["margin"] = loaded.margin
        if loaded.window is not None:
            options["window"] = loaded.window
        den = cls(
            loaded.predict,
            loaded.normalization,
            depth=loaded.depth,
            multiple=loaded.multiple,
            name=loaded.name,
            generator=loaded.generator,
            dims=loaded.dims,
            trained=loaded.trained,
            **options,
        )
        den._keepalive = loaded.keepalive  # a SavedModel's functions need their object
        den.precision = loaded.precision
        den.replicas = loaded.replicas
        return den

    def check_flat_field(self, source: ImageStack) -> None:
        """Refuse Data Exchange projections corrected unlike the training data (flats or not).

        The denoise and evaluate tools get this check from the layout's ``open_input``.
        """
        from tomogan_tf.data.layouts.dxchange import check_flat_field

        check_flat_field(source, self.trained["flat_field"])

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Denoise an (H, W) image or an (N, H, W) stack held in memory.

        A 3-D model takes only stacks, denoised as one volume (N is the depth axis).
        """
        images = np.asarray(images)
        if images.ndim not in (2, 3):
            raise InputError(None, f"expected (H, W) or (N, H, W), got shape {images.shape}")
        if images.ndim == 2 and self.dims == 3:
            raise InputError(
                None, f"a 3-D model denoises volumes (N, H, W), not one {images.shape} image"
            )
        if self.inference == "n2i":
            raise InputError(
                None, "--inference n2i denoises K sub-reconstructions: use denoise_splits"
            )
        stack = images[None] if images.ndim == 2 else images
        out = np.empty(stack.shape, np.float32)

        def write(start: int, data: np.ndarray) -> None:
            out[start : start + len(data)] = data

        self.stream(ArrayStack(stack), write)
        return out[0] if images.ndim == 2 else out

    def denoise_splits(self, splits: list[np.ndarray]) -> np.ndarray:
        """Noise2Inverse's rule on K aligned (N, H, W) sub-reconstructions in memory:
        the mean of the model's outputs on the K means of K - 1 of them."""
        source = SplitReconstructions([ArrayStack(np.asarray(s), f"split {k}")
                                       for k, s in enumerate(splits)])  # fmt: skip
        out = np.empty(source.shape, np.float32)

        def write(start: int, data: np.ndarray) -> None:
            out[start : start + len(data)] = data

        self._stream_splits(source, write)
        return out

    def denoise_file(self, source: ImageStack, sink: Any, progress: bool = True) -> None:
        """Stream ``source`` through the model into ``sink``, a batch of slices at a time."""
        self.stream(source, sink.write, progress)

    def stream(
        self, source: ImageStack, write: Callable[[int, np.ndarray], None], progress: bool = False
    ) -> None:
        """Denoise a stack source batch by batch, handing each result to ``write(start, data)``.

        Results arrive in slice order; 3-D models see the stack as one volume. With
        ``inference="n2i"`` the source must be `SplitReconstructions`.
        """
        if self.inference == "n2i":
            self._stream_splits(source, write, progress)
        elif self.dims == 3:
            stream_volume(self, source, write, progress)
        else:
            stream_slices(self, source, write, self.batch_size, progress)

    def _stream_splits(self, source: ImageStack, write, progress: bool = False) -> None:
        if not isinstance(source, SplitReconstructions):
            raise InputError(
                source.path,
                "--inference n2i needs the K sub-reconstructions of a scan"
                " (tomogan_tf.reconstruct --splits K writes them)",
            )
        inputs = source.held_out_inputs()
        stream_slices(self, inputs, average_groups(source.count, write), self.batch_size, progress)
