"""Train a denoiser from an HDF5 file: ``python -m tomogan_tf.train --h5 data.h5``
(or ``tomogan-train --h5 data.h5``).

Every flag is a setting of `tomogan_tf.training.TrainConfig`; ``--help`` lists them.
Run again with the same ``--logdir`` to resume. Flags are defined only when the
tool runs, so importing this module (or several tools' modules) defines none.
"""

from __future__ import annotations

import sys

from tomogan_tf import cli
from tomogan_tf.errors import InputError


def define_flags() -> None:
    """Define one absl flag per declared setting, with its real type, default and help."""
    from absl import flags

    from tomogan_tf.training.config import settings
    from tomogan_tf.training.defaults import describe_default

    for s in settings():
        if s.flag in flags.FLAGS:
            continue
        help_text = s.help + (describe_default(s.flag) if s.per_family else "")
        if s.choices:
            flags.DEFINE_enum(s.flag, s.default, list(s.choices), help_text)
        elif s.type is bool:
            flags.DEFINE_bool(s.flag, s.default, help_text)
        elif s.type is int:
            flags.DEFINE_integer(s.flag, s.default, help_text)
        elif s.type is float:
            flags.DEFINE_float(s.flag, s.default, help_text)
        elif s.type is str:
            flags.DEFINE_string(s.flag, s.default, help_text)
        else:
            raise TypeError(f"setting {s.flag} has type {s.type}, which no flag parses")


def config_from_flags():
    """The `TrainConfig` the parsed flags give."""
    from absl import flags

    from tomogan_tf.training.config import TrainConfig, settings

    return TrainConfig.from_settings(**{s.flag: flags.FLAGS[s.flag].value for s in settings()})


def main(argv: list[str]) -> None:
    from tomogan_tf.training import train

    if len(argv) > 1:
        raise InputError(None, f"unexpected arguments: {' '.join(argv[1:])}")
    config = config_from_flags()
    metrics = train(config, verbose=1 if sys.stdout.isatty() else 2)
    if metrics:
        print(f"{summary(config, metrics)}; best generator at iteration {metrics['iteration']}:"
              f" {config.run.logdir}/generator_best.keras", flush=True)  # fmt: skip


def summary(config, metrics: dict) -> str:
    """The validation figures of the best generator, saying what they were measured against."""
    mode = config.data.mode
    if mode == "n2s":
        return (
            f"validation PSNR {metrics['psnr']:.2f} dB at hidden pixels against the noisy"
            " images (no clean image was read; score clean data with tomogan_tf.evaluate)"
        )
    against = {
        "supervised": "against the clean images",
        "n2n": "against the second noisy measurement (no clean image was read)",
        "n2i": "noisy = mean of K-1 sub-reconstructions, scored against the held-out one"
        " (no clean image was read; score clean data with tomogan_tf.evaluate)",
    }[mode]
    return (
        f"held-out PSNR {metrics['psnr_noisy']:.2f} dB noisy -> {metrics['psnr']:.2f} dB"
        f" denoised ({metrics['psnr'] - metrics['psnr_noisy']:+.2f} dB), SSIM"
        f" {metrics['ssim_noisy']:.3f} -> {metrics['ssim']:.3f}, {against}"
    )


def run() -> None:
    """Entry point of ``tomogan-train`` and ``python -m tomogan_tf.train``."""
    cli.run(main, prog="tomogan_tf.train", define_flags=define_flags, doc=__doc__)


if __name__ == "__main__":
    run()
