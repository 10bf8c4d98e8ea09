"""Denoise NumPy arrays and files of any size with a trained model.

`Denoiser.load` accepts a training run directory, a ``.keras`` generator (with the
run's ``config.json`` beside it), an exported SavedModel, or nothing (the shipped
pretrained model). Images go through the model's normalisation, are reflect-padded
to what the network needs, denoised whole or in blended tiles, cropped back and
returned in the input's units.

Example:
>>> den = Denoiser.load("runs/demo")                     # doctest: +SKIP
>>> clean = den(noisy_stack)  # (N, H, W) or (H, W) NumPy  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from tomogan_tf.data.normalization import Normalizer
from tomogan_tf.data.pipeline import neighbour_indices
from tomogan_tf.errors import InputError
from tomogan_tf.inference.io import SliceSink, SliceSource
from tomogan_tf.inference.tiling import predict_tiled, receptive_field_radius
from tomogan_tf.models import INPUT_MULTIPLE
from tomogan_tf.models.padding import pad_to_multiple

DEFAULT_MODEL = "tomogan_ct"
METADATA_FILE = os.path.join("assets.extra", "tomogan_tf.json")
# Pixels per forward pass when choosing how many slices to denoise at once.
PIXELS_PER_BATCH = 2**21


def shipped_models_dir() -> str:
    """``saved_models/`` of the source tree, or of the installed data files."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for candidate in (
        os.path.join(here, "saved_models"),
        os.path.join(sys.prefix, "share", "tomogan_tf", "saved_models"),
    ):
        if os.path.isdir(candidate):
            return candidate
    raise InputError(None, "no shipped models found; pass --model RUN_DIR|FILE.keras|SAVEDMODEL")


class Denoiser:
    """Applies a denoising model to images, stacks and files, in tiles when large.

    Args:
        predict: maps normalised (batch, H, W, depth) float32 to (batch, H, W, 1).
        normalizer: raw <-> normalised units; None when ``predict`` works in raw units.
        depth: neighbouring slices the model reads (odd).
        multiple: H and W the model needs to divide.
        tile: largest tile side in pixels; bigger images are tiled.
        margin: pixels of overlap context per tile edge; default: measured
            receptive-field radius of the model.
        batch_size: slices per forward pass; default: as many as fit ~2 Mpixel.
    """

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        normalizer: Normalizer | None,
        depth: int = 1,
        multiple: int = 8,
        tile: int = 1024,
        margin: int | None = None,
        batch_size: int | None = None,
        name: str = "model",
        generator: keras.Model | None = None,
    ):
        self.predict, self.normalizer = predict, normalizer
        self.depth, self.multiple, self.name = depth, multiple, name
        self.tile = max(multiple, tile // multiple * multiple)
        self._margin = margin
        self.batch_size = batch_size
        self.generator = generator  # the Keras model, when loaded from one (for export)
        # The normalisation window the model was trained in: data range of its metrics.
        self.window = normalizer

    @property
    def margin(self) -> int:
        """Tile overlap context: the model's receptive-field radius unless given."""
        if self._margin is None:
            window = self.window or Normalizer(0.0, 1.0)
            # A model without its own normalizer takes raw values: probe in its window.
            probe = (0.0, 1.0) if self.normalizer else (window.low, window.high)
            try:
                self._margin = receptive_field_radius(
                    self.predict, self.depth, self.multiple, value_range=probe
                )
            except ValueError as err:
                raise InputError(
                    self.name, f"cannot measure the tiling margin ({err}); pass --overlap"
                ) from None
        return int(math.ceil(self._margin / self.multiple) * self.multiple)

    def min_tile(self) -> int:
        """The smallest tile that leaves room for blending inside the margins."""
        return 3 * self.margin + 2 * self.multiple

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, model: str | None = None, **options) -> Denoiser:
        """Load a run directory, ``.keras`` file or SavedModel (None: the shipped model)."""
        if model is None:
            model = os.path.join(shipped_models_dir(), DEFAULT_MODEL)
        if not os.path.exists(model):
            raise InputError(model, "model not found")
        if os.path.isdir(model):
            if os.path.exists(os.path.join(model, "saved_model.pb")):
                return cls._from_savedmodel(model, **options)
            for name in ("generator_best.keras", "generator.keras", "generator_last.keras"):
                if os.path.exists(os.path.join(model, name)):
                    return cls._from_keras(os.path.join(model, name), **options)
            versions = sorted((d for d in os.listdir(model) if d.isdigit()), key=int, reverse=True)
            if versions:  # a TF Serving base folder: take the newest version
                return cls._from_savedmodel(os.path.join(model, versions[0]), **options)
            raise InputError(model, "no generator_best.keras, generator.keras or SavedModel inside")
        if model.endswith(".keras"):
            return cls._from_keras(model, **options)
        raise InputError(model, "not a run directory, .keras file or SavedModel")

    @classmethod
    def _from_keras(cls, path: str, **options) -> Denoiser:
        config_path = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
        if not os.path.exists(config_path):
            raise InputError(
                path, "no config.json beside it (the run's normalisation); pass the run directory"
            )
        with open(config_path) as f:
            config = json.load(f)
        try:
            generator = keras.models.load_model(path, compile=False)
        except Exception as err:
            raise InputError(path, f"cannot load Keras model: {err}") from None
        if len(generator.outputs) > 1:
            # Multi-scale denoisers (ADL) list the full-resolution image first.
            generator = keras.Model(generator.inputs, generator.outputs[0], name=generator.name)
        family = config.get("model", "tomogan")

        @tf.function(reduce_retracing=True)
        def run(x):
            return generator(x, training=False)

        return cls(
            lambda x: run(tf.constant(x, tf.float32)).numpy(),
            Normalizer.from_dict(config["normalization"]),
            depth=int(generator.input_shape[-1]),
            multiple=INPUT_MULTIPLE.get(family, 8),
            name=path,
            generator=generator,
            **options,
        )

    @classmethod
    def _from_savedmodel(cls, path: str, **options) -> Denoiser:
        try:
            loaded = tf.saved_model.load(path)
            signature = loaded.signatures["serving_default"]
        except Exception as err:
            raise InputError(path, f"cannot load SavedModel: {err}") from None
        meta_path = os.path.join(path, METADATA_FILE)
        meta = {}
        if os.path.exists(meta_path):
            with open(meta_path) as f:
                meta = json.load(f)
        depth = int(signature.structured_input_signature[1]["noisy"].shape[-1])

        def run(x):
            return signature(noisy=tf.constant(x, tf.float32))["denoised"].numpy()

        if options.get("margin") is None:
            options["margin"] = meta.get("margin")
        den = cls(
            run, None, depth=depth, multiple=int(meta.get("multiple", 8)), name=path, **options
        )
        den._keepalive = loaded
        if "normalization" in meta:
            den.window = Normalizer.from_dict(meta["normalization"])
        return den

    # ------------------------------------------------------------------ arrays
    def _slices_per_batch(self, height: int, width: int) -> int:
        if self.batch_size:
            return self.batch_size
        pixels = min(height, self.tile) * min(width, self.tile)
        return max(1, PIXELS_PER_BATCH // pixels)

    def denoise_batch(self, stacks: np.ndarray) -> np.ndarray:
        """Denoise (batch, H, W, depth) raw-unit stacks; returns (batch, H, W) raw units."""
        if min(stacks.shape[1:3]) < self.multiple // 2:
            raise InputError(
                None,
                f"images of {stacks.shape[1]}x{stacks.shape[2]} are smaller than"
                f" {self.multiple // 2} pixels, too small to denoise",
            )
        x = stacks.astype(np.float32)
        if self.normalizer is not None:
            x = self.normalizer.apply(x)
        padded, height, width = pad_to_multiple(x, self.multiple)
        padded = padded.numpy()
        if max(padded.shape[1:3]) <= self.tile:
            y = self.predict(padded)
        else:
            if self.tile < self.min_tile():
                raise InputError(
                    None,
                    f"--tile {self.tile} leaves no room inside this model's {self.margin}-pixel"
                    f" tile margin; use --tile {self.min_tile()} or more",
                )
            y = predict_tiled(self.predict, padded, self.tile, self.margin, self.multiple)
        y = y[:, : int(height), : int(width), 0]
        return self.normalizer.invert(y).astype(np.float32) if self.normalizer else y

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Denoise an (H, W) image or an (N, H, W) stack held in memory."""
        images = np.asarray(images)
        if images.ndim not in (2, 3):
            raise InputError(None, f"expected (H, W) or (N, H, W), got shape {images.shape}")
        stack = images[None] if images.ndim == 2 else images
        out = np.empty(stack.shape, np.float32)

        def write(start: int, data: np.ndarray) -> None:
            out[start : start + len(data)] = data

        source = SliceSource("input array", None, stack.shape, stack.dtype, False, stack)
        self.stream(source, write)
        return out[0] if images.ndim == 2 else out

    # ------------------------------------------------------------------ files
    def denoise_file(self, source: SliceSource, sink: SliceSink, progress: bool = True) -> None:
        """Stream ``source`` through the model into ``sink``, a batch of slices at a time."""
        self.stream(source, sink.write, progress)

    def stream(
        self, source, write: Callable[[int, np.ndarray], None], progress: bool = False
    ) -> None:
        """Denoise a stack source batch by batch, handing each result to ``write(start, data)``."""
        n, height, width = source.shape
        batch = self._slices_per_batch(height, width)
        bar = keras.utils.Progbar(n, unit_name="slice") if progress else None
        for start in range(0, n, batch):
            indices = list(range(start, min(n, start + batch)))
            neighbours = [neighbour_indices(i, n, self.depth) for i in indices]
            needed = sorted({j for group in neighbours for j in group})
            slices = dict(zip(needed, source.read(needed), strict=True))
            stacks = np.stack([np.stack([slices[j] for j in g], axis=-1) for g in neighbours])
            write(start, self.denoise_batch(stacks))
            if bar is not None:
                bar.add(len(indices))
