"""The predict core: a denoising network applied to raw-unit images of any size.

A network works in its training's normalised units, on sizes its pooling divides,
and on tiles small enough for one forward pass. `Predictor` bridges that to data as
it comes: it maps each image into the network's units (its own percentile window,
or the run's fixed one) and back, reflect-pads to the input multiple, cuts large
inputs into blended tiles (`tomogan_tf.inference.tiling`) with a margin measured
from the network itself, and optionally gives Noise2Self's J-invariant prediction.
An image the normalisation cannot map is passed through unchanged with a warning,
or refused (``strict``), never silently turned into garbage.

It knows nothing of files or models on disk: `tomogan_tf.inference.streaming`
feeds it stacks and volumes, `tomogan_tf.inference.loaders` builds it from a model.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np

from tomogan_tf.choices import INFERENCE
from tomogan_tf.data.masking import jinvariant_predict
from tomogan_tf.data.normalization import (
    Normalization,
    Normalizer,
    UnmappableImage,
    UnmappableWarning,
)
from tomogan_tf.errors import InputError
from tomogan_tf.inference.tiling import predict_tiled, receptive_field_radius
from tomogan_tf.models.padding import pad_to_multiple

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
# (tests/inference/test_denoiser_3d.py). Trained weights may reach further: pass --overlap 24
# (or 48, exact) with a larger --tile when memory allows.
MAX_MARGIN_3D = 16


def check_dims(dims: int, name: str) -> None:
    """Refuse a model that is neither 2-D nor 3-D (one clear error, naming it)."""
    if dims not in DEFAULT_TILE:
        raise InputError(name, f"models must be 2-D or 3-D, got dims={dims}")


class Predictor:
    """A network's ``predict`` applied to raw-unit images: normalised, padded, tiled.

    Args: as for `tomogan_tf.inference.Denoiser` (which adds loading and streaming);
    ``mask_fill`` is what J-invariant inference puts at hidden pixels (the
    training's ``mask_fill``).
    """

    def __init__(
        self,
        predict: Callable[[np.ndarray], np.ndarray],
        normalization: Normalization | None,
        depth: int = 1,
        multiple: int = 8,
        tile: int | None = None,
        margin: int | None = None,
        name: str = "model",
        dims: int = 2,
        inference: str = "direct",
        mask_fill: str = "mean",
        strict: bool = False,
        window: Normalization | None = None,
    ):
        check_dims(dims, name)
        if inference not in INFERENCE:
            raise InputError(None, f"--inference must be one of {', '.join(INFERENCE)}")
        if inference == "jinv" and dims == 3:
            raise InputError(
                name,
                "--inference jinv is for 2-D models (a 3-D model would need 64 passes of"
                " every cube); use --inference direct",
            )
        if inference == "n2i" and dims == 3:
            raise InputError(name, "--inference n2i is for 2-D models (trained with --mode n2i)")
        self.inference, self.mask_fill = inference, mask_fill
        self.predict, self.normalization = predict, normalization
        self.depth, self.multiple, self.name, self.dims = depth, multiple, name, dims
        tile = DEFAULT_TILE[dims] if tile is None else tile
        self.tile = max(multiple, tile // multiple * multiple)
        self._margin = margin
        self.strict = strict
        self.replicas = 1  # devices a batch is split over (`Denoiser.load` with a strategy)
        # The normalisation the model was trained in: data range of its metrics.
        self.window = normalization if window is None else window
        self.passed_through = 0  # images the normalisation could not map

    # ------------------------------------------------------------------ tiling
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

    def check_tile(self, padded_sizes: tuple[int, ...]) -> None:
        """Refuse a ``tile`` too small for the margins, when an input needs tiling."""
        if max(padded_sizes) > self.tile and self.tile < self.min_tile():
            unit = "pixel" if self.dims == 2 else "voxel"
            raise InputError(
                None,
                f"--tile {self.tile} leaves no room inside this model's {self.margin}-{unit}"
                f" tile margin; use --tile {self.min_tile()} or more",
            )

    def check_size(self, height: int, width: int) -> None:
        """Refuse images too small to pad to the network's multiple."""
        if min(height, width) < self.multiple // 2:
            raise InputError(
                None,
                f"images of {height}x{width} are smaller than"
                f" {self.multiple // 2} pixels, too small to denoise",
            )

    # ------------------------------------------------------------------ units
    def windows(self, images: np.ndarray, names: list[str] | None) -> list[Normalizer | None]:
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
                        f"{where}: {err}; passed through unchanged", UnmappableWarning, stacklevel=5
                    )
                self.passed_through += 1
                windows.append(None)
        return windows

    @staticmethod
    def to_network(window: Normalizer | None, image: np.ndarray) -> np.ndarray:
        """``image`` in network units; an unmappable one as zeros (its output is replaced)."""
        return window.apply(image) if window is not None else np.zeros_like(image)

    def from_network(
        self, window: Normalizer | None, output: np.ndarray, raw: np.ndarray
    ) -> np.ndarray:
        """The network's ``output`` for the image ``raw`` back in raw units.

        An image that could not be mapped (``window`` None) comes back as it went in.
        """
        if window is None:
            return raw
        return window.invert(output) if self.normalization is not None else output

    def report_passed_through(self, path: str) -> None:
        """After a stream: how many images in all were passed through unchanged."""
        if self.passed_through > 1:
            warnings.warn(
                f"{path}: {self.passed_through} images could not be normalised and were"
                " passed through unchanged",
                UnmappableWarning,
                stacklevel=4,
            )
        self.passed_through = 0

    # ------------------------------------------------------------------ predicting
    def denoise_batch(self, stacks: np.ndarray, names: list[str] | None = None) -> np.ndarray:
        """Denoise (batch, H, W, depth) raw-unit stacks; returns (batch, H, W) raw units.

        Each image goes through its own window (`PerImageNormalization`) or the fixed
        one. An image the normalisation cannot map is passed through unchanged with a
        warning naming it (``names``), or refused when ``strict``.
        2-D models only; volumes go through `tomogan_tf.inference.streaming`.
        """
        if self.dims != 2:
            raise InputError(self.name, "a 3-D model denoises whole volumes; use stream()")
        self.check_size(*stacks.shape[1:3])
        x = stacks.astype(np.float32)
        centre = x[..., self.depth // 2]
        windows = self.windows(centre, names)
        if self.normalization is not None:
            x = np.stack([self.to_network(w, s) for w, s in zip(windows, x, strict=True)])
        if self.inference == "jinv":
            # Hide each grid phase in image coordinates, before padding: a mirrored
            # copy of a hidden pixel would otherwise show it to the network.
            # "Zero" is 0 in normalised units; a SavedModel normalises inside, so it
            # gets the raw value that maps to 0, the low end of each image's window.
            zero = 0.0
            if self.normalization is None and self.window is not None:
                zero = np.array([w.low if w else 0.0 for w in windows], np.float32)
                zero = zero[:, None, None, None]
            y = jinvariant_predict(self.predict_images, x, fill=self.mask_fill, zero=zero)
        else:
            y = self.predict_images(x)
        y = y[..., 0]
        out = np.empty_like(centre)
        for b, window in enumerate(windows):
            out[b] = self.from_network(window, y[b], centre[b])
        return out

    def predict_images(self, x: np.ndarray) -> np.ndarray:
        """The network on (batch, H, W, depth) of any size: padded, tiled, cropped back."""
        padded, height, width = pad_to_multiple(x, self.multiple)
        padded = padded.numpy()
        self.check_tile(padded.shape[1:3])
        margin = self.margin if max(padded.shape[1:3]) > self.tile else 0
        y = predict_tiled(self.predict, padded, self.tile, margin, self.multiple)
        return y[:, : int(height), : int(width)]
