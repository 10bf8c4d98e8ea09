"""Held-out quality of a model: PSNR and SSIM of noisy and denoised images against clean ones.

Every slice of the noisy stack is denoised (streaming, tiled as for any file) and
scored, with the noisy slice itself, against the clean slice, each in the window the
model maps it with (its own noisy percentiles, or the fixed window) as data range:
the same figures training reports for its validation slices, so a run's
``metrics.json`` and an evaluation of its model compare directly.

Data Exchange projections (layout ``dxchange``) are flat/dark corrected as in training
and scored against a noise-free reference in the same units, by default the
``reference/`` datasets that ``data_tools.make_projection_dataset`` writes. Clean
images are read for scoring only.

Example:
>>> evaluate(Denoiser.load("runs/demo"), "data.h5")  # doctest: +SKIP
{'psnr_noisy': 24.1, 'ssim_noisy': 0.61, 'psnr': 31.0, 'ssim': 0.88, 'slices': 64}
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np

from tomogan_tf.data.layouts import get_layout
from tomogan_tf.data.normalization import UnmappableImage
from tomogan_tf.data.sources import open_stack
from tomogan_tf.errors import InputError
from tomogan_tf.inference.denoiser import Denoiser
from tomogan_tf.metrics import image_metrics


def evaluate(
    denoiser: Denoiser,
    path: str,
    noisy_key: str = "test_ns",
    clean_key: str | None = None,
    layout: str | None = None,
) -> dict[str, float]:
    """Mean PSNR/SSIM of noisy and denoised slices against the clean ones.

    ``layout`` (a name in `tomogan_tf.data.layouts.LAYOUTS`) defaults to the one the
    model was trained on and decides how ``path`` is read (``noisy_key`` does not
    apply to Data Exchange projections); ``clean_key`` defaults to that layout's
    reference. Returns ``psnr_noisy``, ``ssim_noisy``, ``psnr``, ``ssim`` (means over
    slices) and ``slices``.
    """
    if denoiser.window is None:
        raise InputError(denoiser.name, "has no recorded normalisation to define the data range")
    reader = get_layout(layout or denoiser.trained["layout"])
    clean_key = clean_key or reader.reference_key(denoiser.trained)
    scores: dict[str, list[float]] = {k: [] for k in ("psnr_noisy", "ssim_noisy", "psnr", "ssim")}
    with ExitStack() as files:
        clean_source = files.enter_context(open_stack(path, clean_key))
        noisy = files.enter_context(
            reader.open_input(path, noisy_key, denoiser.trained, splits=denoiser.inference == "n2i")
        )
        if noisy.shape != clean_source.shape:
            raise InputError(
                path,
                f"'{noisy.key}' has shape {noisy.shape} but '{clean_key}' has shape"
                f" {clean_source.shape}; noisy and clean stacks must match slice for slice",
            )
        if min(noisy.shape[1:]) < 11:
            raise InputError(path, f"images of {noisy.shape[1:]} are smaller than SSIM's 11x11")

        def score(start: int, denoised: np.ndarray) -> None:
            indices = list(range(start, start + len(denoised)))
            noisy_slices = noisy.read(indices)
            try:  # each slice in the window it was denoised in, as in training
                windows = [denoiser.window.for_image(image) for image in noisy_slices]
            except UnmappableImage as err:
                raise InputError(path, f"'{noisy.key}': {err}") from None

            def scaled(images: np.ndarray) -> np.ndarray:
                return np.stack([w.apply(i) for w, i in zip(windows, images, strict=True)])[
                    ..., None
                ]

            clean = scaled(clean_source.read(indices))  # read and scaled once per batch
            for suffix, images in (("_noisy", noisy_slices), ("", denoised)):
                psnr, ssim = image_metrics(clean, scaled(images))
                scores["psnr" + suffix] += list(psnr.numpy())
                scores["ssim" + suffix] += list(ssim.numpy())

        denoiser.stream(noisy, score)
    result = {k: float(np.mean(v)) for k, v in scores.items()}
    result["slices"] = len(scores["psnr"])
    return result
