"""Denoise NumPy arrays and files of any size with a trained model.

`Denoiser.load` accepts a training run directory, a ``.keras`` generator (with the
run's ``config.json`` beside it), an exported SavedModel, or nothing (the shipped
pretrained model). Images go through the model's normalisation, are reflect-padded
to what the network needs, denoised whole or in blended tiles, cropped back and
returned in the input's units.

2-D models denoise a stack slice by slice (with ``depth`` neighbours as channels);
3-D models (``adl3d``) treat the whole (N, H, W) stack as one volume and stream it
through in overlapping z-slabs, each tiled in cubes.

Example:
>>> den = Denoiser.load("runs/demo")                     # doctest: +SKIP
>>> clean = den(noisy_stack)  # (N, H, W) or (H, W) NumPy  # doctest: +SKIP
"""

from __future__ import annotations

import json
import math
import os
import sys
import warnings
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from tomogan_tf.data.dxchange import DxchangeSource
from tomogan_tf.data.masking import jinvariant_predict
from tomogan_tf.data.normalization import (
    Normalization,
    Normalizer,
    UnmappableImage,
    UnmappableWarning,
    normalization_from_dict,
)
from tomogan_tf.data.pipeline import neighbour_indices
from tomogan_tf.errors import InputError
from tomogan_tf.inference.io import SliceSink, SliceSource
from tomogan_tf.inference.tiling import (
    Region,
    blend_tiles,
    predict_tiled,
    receptive_field_radius,
    tile_grid,
)
from tomogan_tf.models import get_family
from tomogan_tf.models.padding import mirror_index, pad_to_multiple, pad_to_multiple_nd

DEFAULT_MODEL = "tomogan_ct"
INFERENCE = ("direct", "jinv")
# What a model without a record of its training (older exports) was trained like.
TRAINED_DEFAULTS = {
    "mode": "supervised",
    "layout": "tomogan",
    "minus_log": False,
    "flat_field": None,  # dxchange: whether training divided by flat fields
    "mask": "grid",
    "mask_fill": "mean",
}
METADATA_FILE = os.path.join("assets.extra", "tomogan_tf.json")
# Pixels per forward pass when choosing how many slices to denoise at once.
PIXELS_PER_BATCH = 2**21
# Default tile side: 2-D images up to 1024^2 go through whole. A 3-D ADL pass keeps
# ~5 KB of activations per voxel (96+ channels at full resolution): a 96^3 cube took
# 4.4 GB and ~50 s on 2 CPU cores (128^3: 12 GB), so 96 is the default cube side.
DEFAULT_TILE = {2: 1024, 3: 96}
# ADL's receptive-field radius is 48 voxels, so exact 3-D tiles would be at least
# 160^3 (~20 GB a pass, and only (160 - 120)^3 / 160^3 = 1.6 % of it kept). The
# influence of distant input decays fast: a random-weight ADL moves a pixel 24 pixels
# from an input change by 0.04 % of the change's effect at the centre, 5 % at 16.
# Blended tiles need less, as the ramp averages two tiles' estimates: with a 16-voxel
# margin, tiled adl3d output matched whole-volume output to 2e-5 (normalised units;
# 0.2 % of the output's spread), against 4e-3 (40 %) with 8
# (tests/test_inference_3d.py). Trained weights may reach further: pass --overlap 24
# (or 48, exact) with a larger --tile when memory allows.
MAX_MARGIN_3D = 16


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
        inference: ``"direct"`` (one pass) or ``"jinv"``: Noise2Self's J-invariant
            prediction, every pixel predicted with itself hidden by the period-4 grid,
            one pass per grid phase (16); 2-D models only.
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
        if dims not in DEFAULT_TILE:
            raise InputError(name, f"models must be 2-D or 3-D, got dims={dims}")
        if dims == 3 and batch_size is not None:
            raise InputError(
                None, "--batch applies to 2-D models; a 3-D model takes one cube a pass (--tile)"
            )
        if inference not in INFERENCE:
            raise InputError(None, f"--inference must be one of {', '.join(INFERENCE)}")
        self.trained = {**TRAINED_DEFAULTS, **(trained or {})}
        if inference == "jinv" and dims == 3:
            raise InputError(
                name,
                "--inference jinv is for 2-D models (a 3-D model would need 64 passes of"
                " every cube); use --inference direct",
            )
        self.inference = inference
        self.predict, self.normalization = predict, normalization
        self.depth, self.multiple, self.name, self.dims = depth, multiple, name, dims
        tile = DEFAULT_TILE[dims] if tile is None else tile
        self.tile = max(multiple, tile // multiple * multiple)
        self._margin = margin
        self.batch_size = batch_size
        self.generator = generator  # the Keras model, when loaded from one (for export)
        self.strict = strict
        # The normalisation the model was trained in: data range of its metrics.
        self.window = normalization if window is None else window
        self.passed_through = 0  # images the normalisation could not map

    @property
    def margin(self) -> int:
        """Tile overlap context: the model's receptive-field radius unless given.

        In 3-D it is capped at `MAX_MARGIN_3D` (see there): the full radius would
        need cubes too large for a forward pass on most machines.
        """
        if self._margin is None:
            # A model without its own normalisation takes raw values: probe in its
            # fixed window (a per-image one maps the probe's own range to [0, 1]).
            window = self.window if isinstance(self.window, Normalizer) else None
            probe = (0.0, 1.0) if self.normalization or not window else (window.low, window.high)
            try:
                radius = receptive_field_radius(
                    self.predict, self.depth, self.multiple, value_range=probe, dims=self.dims
                )
            except ValueError as err:
                raise InputError(
                    self.name, f"cannot measure the tiling margin ({err}); pass --overlap"
                ) from None
            self._margin = radius if self.dims == 2 else min(radius, MAX_MARGIN_3D)
        return int(math.ceil(self._margin / self.multiple) * self.multiple)

    def min_tile(self) -> int:
        """The smallest tile that leaves room for blending inside the margins."""
        return 3 * self.margin + 2 * self.multiple

    def _check_tile(self, padded_sizes: tuple[int, ...]) -> None:
        if max(padded_sizes) > self.tile and self.tile < self.min_tile():
            unit = "pixel" if self.dims == 2 else "voxel"
            raise InputError(
                None,
                f"--tile {self.tile} leaves no room inside this model's {self.margin}-{unit}"
                f" tile margin; use --tile {self.min_tile()} or more",
            )

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
            family = get_family(config.get("model", "tomogan"))
        except ValueError as err:
            raise InputError(config_path, str(err)) from None
        try:
            generator = keras.models.load_model(path, compile=False)
        except Exception as err:
            raise InputError(path, f"cannot load Keras model: {err}") from None
        if len(generator.outputs) > 1:
            # Multi-scale denoisers (ADL) list the full-resolution image first.
            generator = keras.Model(generator.input, generator.outputs[0], name=generator.name)
        if len(generator.input_shape) != family.dims + 2:
            raise InputError(
                path, f"input {generator.input_shape} does not fit a {family.dims}-D model"
            )

        @tf.function(reduce_retracing=True)
        def run(x):
            return generator(x, training=False)

        return cls(
            lambda x: run(tf.constant(x, tf.float32)).numpy(),
            normalization_from_dict(config["normalization"]),
            depth=int(generator.input_shape[-1]),
            multiple=family.input_multiple,
            name=path,
            generator=generator,
            dims=family.dims,
            trained={k: config[k] for k in TRAINED_DEFAULTS if k in config},
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
        if "normalization" in meta:
            options["window"] = normalization_from_dict(meta["normalization"])
        den = cls(
            run,
            None,
            depth=depth,
            multiple=int(meta.get("multiple", 8)),
            name=path,
            dims=int(meta.get("dims", 2)),  # exports before 3-D support were all 2-D
            trained=meta.get("trained"),
            **options,
        )
        den._keepalive = loaded
        return den

    def check_flat_field(self, source: DxchangeSource) -> None:
        """Refuse Data Exchange projections corrected unlike the training data (flats or not)."""
        trained, here = self.trained["flat_field"], source.info.n_flats > 0
        if trained is not None and trained != here:
            raise InputError(
                source.path,
                "has no flat fields, but the model was trained on flat-corrected projections"
                if trained
                else "has flat fields, but the model was trained on projections without them",
            )

    # ------------------------------------------------------------------ arrays
    def _slices_per_batch(self, height: int, width: int) -> int:
        if self.batch_size:
            return self.batch_size
        pixels = min(height, self.tile) * min(width, self.tile)
        return max(1, PIXELS_PER_BATCH // pixels)

    def _check_size(self, height: int, width: int) -> None:
        if min(height, width) < self.multiple // 2:
            raise InputError(
                None,
                f"images of {height}x{width} are smaller than"
                f" {self.multiple // 2} pixels, too small to denoise",
            )

    def denoise_batch(self, stacks: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """Denoise (batch, H, W, depth) raw-unit stacks; returns (batch, H, W) raw units.

        Each image goes through its own window (`PerImageNormalization`) or the fixed
        one. An image the normalisation cannot map is passed through unchanged with a
        warning naming it (``names``), or refused when ``strict``.
        2-D models only; volumes go through `stream`.
        """
        if self.dims != 2:
            raise InputError(self.name, "a 3-D model denoises whole volumes; use stream()")
        self._check_size(*stacks.shape[1:3])
        x = stacks.astype(np.float32)
        centre = x[..., self.depth // 2]
        windows = self._windows(centre, names)
        if self.normalization is not None:
            x = np.stack([self._apply(w, s) for w, s in zip(windows, x, strict=True)])
        if self.inference == "jinv":
            # Hide each grid phase in image coordinates, before padding: a mirrored
            # copy of a hidden pixel would otherwise show it to the network.
            # "Zero" is 0 in normalised units; a SavedModel normalises inside, so it
            # gets the raw value that maps to 0, the low end of each image's window.
            zero = 0.0
            if self.normalization is None and self.window is not None:
                zero = np.array([w.low if w else 0.0 for w in windows], np.float32)
                zero = zero[:, None, None, None]
            fill = self.trained["mask_fill"]
            y = jinvariant_predict(self._predict_images, x, fill=fill, zero=zero)
        else:
            y = self._predict_images(x)
        y = y[..., 0]
        out = np.empty_like(centre)
        for b, window in enumerate(windows):
            if window is None:  # could not be mapped: the input, unchanged
                out[b] = centre[b]
            else:
                out[b] = window.invert(y[b]) if self.normalization is not None else y[b]
        return out

    def _windows(self, images: np.ndarray, names: list[str] | None) -> list[Normalizer | None]:
        """Each image's map to the network's units (None: passed through unchanged).

        A model without its own normalisation (a SavedModel) still gets the check,
        against the normalisation it records, so it never returns silent garbage.
        """
        policy = self.normalization or self.window
        if policy is None:
            return [Normalizer(0.0, 1.0)] * len(images)
        windows = []
        for k, image in enumerate(images):
            try:
                policy.check_range(image)
                windows.append(policy.for_image(image))
            except UnmappableImage as err:
                where = names[k] if names else f"image {k}"
                if self.strict:
                    raise InputError(where, str(err)) from None
                if self.passed_through == 0:
                    warnings.warn(
                        f"{where}: {err}; passed through unchanged", UnmappableWarning, stacklevel=4
                    )
                self.passed_through += 1
                windows.append(None)
        return windows

    def _predict_images(self, x: np.ndarray) -> np.ndarray:
        """The network on (batch, H, W, depth) of any size: padded, tiled, cropped back."""
        padded, height, width = pad_to_multiple(x, self.multiple)
        padded = padded.numpy()
        self._check_tile(padded.shape[1:3])
        margin = self.margin if max(padded.shape[1:3]) > self.tile else 0
        y = predict_tiled(self.predict, padded, self.tile, margin, self.multiple)
        return y[:, : int(height), : int(width)]

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
        """Denoise a stack source batch by batch, handing each result to ``write(start, data)``.

        Results arrive in slice order; 3-D models see the stack as one volume.
        """
        if self.dims == 3:
            self._stream_volume(source, write, progress)
            return
        n, height, width = source.shape
        if self.inference == "jinv" and n < self.depth:
            raise InputError(
                source.path,
                f"{n} slice(s) are fewer than the model's --depth {self.depth}: the neighbours"
                " of a slice would include the slice itself, which J-invariant inference hides",
            )
        batch = self._slices_per_batch(height, width)
        bar = keras.utils.Progbar(n, unit_name="slice") if progress else None
        for start in range(0, n, batch):
            indices = list(range(start, min(n, start + batch)))
            neighbours = [neighbour_indices(i, n, self.depth) for i in indices]
            needed = sorted({j for group in neighbours for j in group})
            slices = dict(zip(needed, source.read(needed), strict=True))
            stacks = np.stack([np.stack([slices[j] for j in g], axis=-1) for g in neighbours])
            names = [f"{source.path}: slice {i}" for i in indices]
            write(start, self.denoise_batch(stacks, names))
            if bar is not None:
                bar.add(len(indices))
        self._report_passed_through(source.path)

    def _stream_volume(
        self, source, write: Callable[[int, np.ndarray], None], progress: bool
    ) -> None:
        """Denoise a stack as one volume, a z-slab of at most ``tile`` slices at a time.

        The volume is mirror-padded to multiples of ``multiple`` (along D by reading
        mirrored slice indices) and tiled in cubes by `blend_tiles`, which releases
        slices front to back as soon as no later slab overlaps them. Memory: about
        four slabs of ``tile`` slices (input raw and normalised, blended sum and
        weights) and one cube's forward pass; each slice is read once.
        """
        n, height, width = source.shape
        if getattr(source, "single_image", False):
            raise InputError(
                source.path, "a 3-D model denoises volumes (N, H, W), not a single (H, W) image"
            )
        self._check_size(height, width)
        padded = tuple(-(-s // self.multiple) * self.multiple for s in (n, height, width))
        self._check_tile(padded)
        margin = self.margin if max(padded) > self.tile else 0
        starts, _, _ = tile_grid(padded, self.tile, margin, self.multiple)
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
                    windows.update(zip(missing, self._windows(slices, names), strict=True))
                x = np.stack([held[i] for i in indices])
                if self.normalization is not None:  # each slice by its own window
                    x = np.stack(
                        [self._apply(windows[i], s) for i, s in zip(indices, x, strict=True)]
                    )
                x = x[None, ..., None]
                slab.update(
                    start=z.start,
                    raw=held,
                    data=pad_to_multiple_nd(x, self.multiple, (2, 3))[0].numpy(),
                )
            return slab["data"][(slice(None), slice(None), *region[1:])]

        blocks = blend_tiles(
            self.predict,
            read,
            (1, *padded),
            self.tile,
            margin,
            self.multiple,
            on_tile=None if bar is None else lambda: bar.add(1),
        )
        for start, block in blocks:
            y = block[0, : max(0, n - start), :height, :width, 0]
            if len(y):
                out = np.empty(y.shape, np.float32)
                for k, image in enumerate(y):
                    window = windows[start + k]
                    if window is None:  # could not be mapped: the input, unchanged
                        out[k] = source.read([start + k])[0]
                    elif self.normalization is not None:
                        out[k] = window.invert(image)
                    else:
                        out[k] = image
                write(start, out)
        self._report_passed_through(source.path)

    @staticmethod
    def _apply(window: Normalizer | None, image: np.ndarray) -> np.ndarray:
        """``image`` in network units; an unmappable one as zeros (its output is replaced)."""
        return window.apply(image) if window is not None else np.zeros_like(image)

    def _report_passed_through(self, path: str) -> None:
        """After a stream: how many images in all were passed through unchanged."""
        if self.passed_through > 1:
            warnings.warn(
                f"{path}: {self.passed_through} images could not be normalised and were"
                " passed through unchanged",
                UnmappableWarning,
                stacklevel=3,
            )
        self.passed_through = 0
