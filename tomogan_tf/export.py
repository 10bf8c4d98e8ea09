"""Export a model as a TF Serving SavedModel:
``python -m tomogan_tf.export --model M --out BASE/NAME [--version N]``.

Writes ``BASE/NAME/N/`` (default N: one more than the newest version there) with a
``serving_default`` signature: input ``noisy`` float32 [batch, H, W, depth] in the
data's units (each image mapped by its own percentiles), output ``denoised``
[batch, H, W, 1] in the same units; normalisation and padding happen inside the
graph, so any units, H and W work. ``denoise_in_window`` also takes ``window``
[batch, 2], each image's raw low/high, for clients that tile images themselves.
A 3-D model (``adl3d``) takes and returns volumes, [batch, D, H, W, 1], any D, H and W.
``assets.extra/tf_serving_warmup_requests`` holds warm-up requests TF Serving replays on
loading the version (``--nowarmup``: none); README, "Serving with TF Serving", has a
model config and a batching configuration.
"""

from __future__ import annotations

from absl import flags

from tomogan_tf import cli
from tomogan_tf.errors import InputError

FLAGS = flags.FLAGS


def define_flags() -> None:
    """This tool's flags; defined only when it runs (see `tomogan_tf.cli`)."""
    flags.DEFINE_string("model", None, "Run directory or .keras file (default: the shipped model).")
    flags.DEFINE_string("out", None, "BASE/NAME folder; the version is a folder inside it.")
    flags.DEFINE_integer("version", None, "Integer version (default: next free one).")
    flags.DEFINE_bool(
        "warmup",
        True,
        "Write assets.extra/tf_serving_warmup_requests: a few representative requests TF"
        " Serving replays when it loads the version, so the first real one is not slow.",
    )
    cli.define_precision_flag(
        "float32",
        "Compute precision of the exported graph (inputs and outputs stay float32). Default"
        " float32, which every server runs well; mixed_bfloat16 only for servers whose CPU or"
        " GPU computes bfloat16 natively; auto: what suits this machine.",
    )


def main(argv: list[str]) -> None:
    """Export ``--model`` to ``--out/VERSION``; print where and which signatures."""
    from tomogan_tf.inference.loaders import locate_model

    cli.check_no_arguments(argv)
    if not FLAGS.out:
        raise InputError(None, "--out BASE/NAME is required")
    locate_model(FLAGS.model)  # a wrong --model is reported before TensorFlow loads
    from tomogan_tf.serving import export_savedmodel

    target = export_savedmodel(
        FLAGS.model, FLAGS.out, FLAGS.version, FLAGS.precision, warmup=FLAGS.warmup
    )
    warmup = ", with TF Serving warm-up requests" if FLAGS.warmup else ""
    print(
        f"exported SavedModel to {target} in {FLAGS.precision} (signatures serving_default:"
        f" noisy -> denoised; denoise_in_window: noisy, window -> denoised){warmup}"
    )


def run() -> None:
    """The ``tomogan-export`` console script, also ``python -m tomogan_tf.export``."""
    cli.run(main, prog="tomogan_tf.export", define_flags=define_flags, doc=__doc__)


if __name__ == "__main__":
    run()
