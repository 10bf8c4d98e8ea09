"""Train a denoiser from an HDF5 file: ``python -m tomogan_tf.train --h5 data.h5``.

Every flag is a field of `tomogan_tf.training.TrainConfig`; ``--help`` lists them.
Run again with the same ``--logdir`` to resume.
"""

from __future__ import annotations

import dataclasses
import sys

from absl import flags

from tomogan_tf import cli
from tomogan_tf.errors import InputError
from tomogan_tf.training import TrainConfig, train
from tomogan_tf.training.config import FAMILY_DEFAULTS, MODE_DEFAULTS

FLAGS = flags.FLAGS


def _family_help(name: str) -> str:
    values = {family: defaults[name] for family, defaults in FAMILY_DEFAULTS.items()}
    modes = "".join(
        f"; --mode {mode}: {defaults[name]}"
        for mode, defaults in MODE_DEFAULTS.items()
        if name in defaults
    )
    if len(set(values.values())) == 1:
        return f" (default: {next(iter(values.values()))}{modes})"
    per_family = ", ".join(f"{k} {v}" for k, v in values.items())
    return f" (default per --model: {per_family}{modes})"


def define_flags() -> None:
    """Define one absl flag per `TrainConfig` field, with its default and help."""
    for f in dataclasses.fields(TrainConfig):
        if f.metadata.get("flag", True) is False:
            continue
        help_text, choices = f.metadata["help"], f.metadata.get("choices")
        if f.name in FAMILY_DEFAULTS["tomogan"]:
            help_text += _family_help(f.name)
        kind = f.type.removesuffix(" | None")
        if choices:
            flags.DEFINE_enum(f.name, f.default, choices, help_text)
        elif kind == "bool":
            flags.DEFINE_bool(f.name, f.default, help_text)
        elif kind == "int":
            flags.DEFINE_integer(f.name, f.default, help_text)
        elif kind == "float":
            flags.DEFINE_float(f.name, f.default, help_text)
        else:
            flags.DEFINE_string(f.name, f.default, help_text)


def config_from_flags() -> TrainConfig:
    names = [f.name for f in dataclasses.fields(TrainConfig) if f.metadata.get("flag", True)]
    return TrainConfig(**{name: FLAGS[name].value for name in names})


def main(argv: list[str]) -> None:
    if len(argv) > 1:
        raise InputError(None, f"unexpected arguments: {' '.join(argv[1:])}")
    config = config_from_flags()
    metrics = train(config, verbose=1 if sys.stdout.isatty() else 2)
    if metrics:
        print(f"{summary(config, metrics)}; best generator at iteration {metrics['iteration']}:"
              f" {config.logdir}/generator_best.keras", flush=True)  # fmt: skip


def summary(config: TrainConfig, metrics: dict) -> str:
    """The validation figures of the best generator, saying what they were measured against."""
    if config.mode == "n2s":
        return (
            f"validation PSNR {metrics['psnr']:.2f} dB at hidden pixels against the noisy"
            " images (no clean image was read; score clean data with tomogan_tf.evaluate)"
        )
    against = "against the clean images" if config.mode == "supervised" else (
        "against the second noisy measurement (no clean image was read)"
    )  # fmt: skip
    return (
        f"held-out PSNR {metrics['psnr_noisy']:.2f} dB noisy -> {metrics['psnr']:.2f} dB"
        f" denoised ({metrics['psnr'] - metrics['psnr_noisy']:+.2f} dB), SSIM"
        f" {metrics['ssim_noisy']:.3f} -> {metrics['ssim']:.3f}, {against}"
    )


define_flags()

if __name__ == "__main__":
    cli.run(main, prog="tomogan_tf.train")
