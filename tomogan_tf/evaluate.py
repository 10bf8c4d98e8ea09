"""Held-out quality of a model: ``python -m tomogan_tf.evaluate --model M --h5 data.h5``.

Denoises every slice of the noisy stack (streaming, tiled like the denoise tool) and
prints the mean PSNR and SSIM of the noisy and of the denoised slices against the
clean stack, each slice in the window the model maps it with (its own noisy
percentiles, or a fixed window) as data range: the same figures training reports
for its validation slices.

Data Exchange projections (``--layout dxchange``, the default for a model trained on
them) are flat/dark corrected as in training and scored against a noise-free
reference in the same units, by default the ``reference/`` datasets that
``data_tools.make_projection_dataset`` writes (transmission, or line integrals for a
``--minus_log`` model). Clean images are used for scoring only, never for training.
"""

from __future__ import annotations

from contextlib import ExitStack

import numpy as np
from absl import flags

from tomogan_tf import cli
from tomogan_tf.data.dxchange import open_dxchange
from tomogan_tf.data.normalization import UnmappableImage
from tomogan_tf.errors import InputError
from tomogan_tf.inference.denoiser import INFERENCE, Denoiser
from tomogan_tf.inference.io import open_source
from tomogan_tf.metrics import image_metrics
from tomogan_tf.utils.files import same_file, write_json_atomic

FLAGS = flags.FLAGS
flags.DEFINE_string("model", None, "Run directory, .keras file or SavedModel (default: shipped).")
flags.DEFINE_string("h5", None, "HDF5 file with aligned noisy and clean stacks.")
flags.DEFINE_string("noisy_key", "test_ns", "Noisy stack (N, H, W).")
flags.DEFINE_string(
    "clean_key",
    None,
    "Clean stack (N, H, W) (default test_gt; Data Exchange: reference/transmission, or"
    " reference/line_integrals for a --minus_log model).",
)
flags.DEFINE_enum(
    "layout",
    None,
    ["tomogan", "dxchange"],
    "Layout of --h5 (default: the one the model was trained on).",
)
flags.DEFINE_string("json", None, "Also write the figures to this JSON file.")
flags.DEFINE_enum("inference", "direct", INFERENCE, "As for tomogan_tf.denoise.")
flags.DEFINE_bool(
    "strict",
    False,
    "Fail (exit code 2) on an image the model's normalisation cannot map (constant, or far"
    " outside a fixed window) instead of warning and passing it through unchanged.",
)


def evaluate(
    denoiser: Denoiser, path: str, noisy_key: str, clean_key: str, layout: str = "tomogan"
) -> dict:
    """Mean PSNR/SSIM of noisy and denoised slices against the clean ones."""
    if denoiser.window is None:
        raise InputError(denoiser.name, "has no recorded normalisation to define the data range")
    scores: dict[str, list[float]] = {k: [] for k in ("psnr_noisy", "ssim_noisy", "psnr", "ssim")}
    with ExitStack() as files:
        clean_source = files.enter_context(open_source(path, clean_key))
        if layout == "dxchange":
            noisy = files.enter_context(open_dxchange(path, denoiser.trained["minus_log"]))
        else:
            noisy = files.enter_context(open_source(path, noisy_key))
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


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise InputError(None, f"unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.h5:
        raise InputError(None, "--h5 is required")
    if FLAGS.json and same_file(FLAGS.json, FLAGS.h5):
        raise InputError(FLAGS.json, "is the input file; choose another --json")
    denoiser = Denoiser.load(FLAGS.model, inference=FLAGS.inference, strict=FLAGS.strict)
    layout = FLAGS.layout or denoiser.trained["layout"]
    clean_key = (
        FLAGS.clean_key
        or {
            "tomogan": "test_gt",
            "dxchange": "reference/line_integrals"
            if denoiser.trained["minus_log"]
            else "reference/transmission",
        }[layout]
    )
    result = evaluate(denoiser, FLAGS.h5, FLAGS.noisy_key, clean_key, layout)
    print(
        f"{result['slices']} slices of {FLAGS.h5}: PSNR {result['psnr_noisy']:.2f} dB noisy ->"
        f" {result['psnr']:.2f} dB denoised ({result['psnr'] - result['psnr_noisy']:+.2f} dB),"
        f" SSIM {result['ssim_noisy']:.3f} -> {result['ssim']:.3f}"
    )
    if FLAGS.json:
        write_json_atomic(result, FLAGS.json)


if __name__ == "__main__":
    cli.run(main, prog="tomogan_tf.evaluate")
