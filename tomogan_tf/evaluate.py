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
``--minus_log`` model). With ``--inference n2i`` (a Noise2Inverse model) the noisy stack is
the mean of the file's K sub-reconstructions, which the model's rule denoises. Clean
images are used for scoring only, never for training.
"""

from __future__ import annotations

from typing import Any

from absl import flags

from tomogan_tf import cli
from tomogan_tf.errors import InputError
from tomogan_tf.utils.files import same_file, write_json_atomic

FLAGS = flags.FLAGS


def define_flags() -> None:
    """This tool's flags; defined only when it runs (see `tomogan_tf.cli`)."""
    from tomogan_tf.choices import INFERENCE
    from tomogan_tf.data.layouts import LAYOUTS

    flags.DEFINE_string(
        "model", None, "Run directory, .keras file or SavedModel (default: shipped)."
    )
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
        list(LAYOUTS),
        "Layout of --h5 (default: the one the model was trained on).",
    )
    flags.DEFINE_string("json", None, "Also write the figures to this JSON file.")
    flags.DEFINE_enum("inference", "direct", INFERENCE, "As for tomogan_tf.denoise.")
    cli.define_precision_flag()
    flags.DEFINE_bool(
        "strict",
        False,
        "Fail (exit code 2) on an image the model's normalisation cannot map (constant, or far"
        " outside a fixed window) instead of warning and passing it through unchanged.",
    )


def main(argv: list[str]) -> None:
    """Score ``--model`` on ``--h5``; print one line of figures (and write ``--json``)."""
    from tomogan_tf.inference.loaders import locate_model

    cli.check_no_arguments(argv)
    if not FLAGS.h5:
        raise InputError(None, "--h5 is required")
    if FLAGS.json and same_file(FLAGS.json, FLAGS.h5):
        raise InputError(FLAGS.json, "is the input file; choose another --json")
    locate_model(FLAGS.model)  # a wrong --model is reported before TensorFlow loads
    from tomogan_tf.inference import Denoiser, evaluate

    denoiser = Denoiser.load(
        FLAGS.model, inference=FLAGS.inference, strict=FLAGS.strict, precision=FLAGS.precision
    )
    print(f"{denoiser.name}: {denoiser.precision.describe()}", flush=True)
    result = evaluate(denoiser, FLAGS.h5, FLAGS.noisy_key, FLAGS.clean_key, FLAGS.layout)
    print(
        f"{result['slices']} slices of {FLAGS.h5}: PSNR {result['psnr_noisy']:.2f} dB noisy ->"
        f" {result['psnr']:.2f} dB denoised ({result['psnr'] - result['psnr_noisy']:+.2f} dB),"
        f" SSIM {result['ssim_noisy']:.3f} -> {result['ssim']:.3f}"
    )
    if FLAGS.json:
        write_json_atomic(result, FLAGS.json)


def run() -> None:
    """The ``tomogan-evaluate`` console script, also ``python -m tomogan_tf.evaluate``."""
    cli.run(main, prog="tomogan_tf.evaluate", define_flags=define_flags, doc=__doc__)


def __getattr__(name: str) -> Any:
    # `evaluate()` lived here before it moved to the library; old imports still work.
    if name == "evaluate":
        from tomogan_tf.inference import evaluate

        return evaluate
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    run()
