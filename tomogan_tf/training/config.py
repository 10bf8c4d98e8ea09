"""Every setting of a training run, in one dataclass.

The command-line flags of ``python -m tomogan_tf.train`` are generated from these
fields, the run directory's ``config.json`` is this dataclass plus the fitted
normalisation, and notebooks build a `TrainConfig` directly.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from tomogan_tf.errors import InputError
from tomogan_tf.losses import GAN_LOSSES
from tomogan_tf.models import GENERATORS
from tomogan_tf.utils.files import write_json_atomic


def _opt(default, help: str, choices=None):
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class TrainConfig:
    """Settings of one training run. Loss weights suit images normalised to [0, 1]."""

    h5: str = _opt(None, "HDF5 file with the training and validation stacks.")
    logdir: str = _opt(
        "runs/tomogan",
        "Run directory: config, checkpoints, logs, models. "
        "Training resumes if it already holds a run.",
    )
    model: str = _opt("tomogan", "Model family.", sorted(GENERATORS))
    depth: int = _opt(1, "Adjacent slices stacked as input channels (odd); centre one is denoised.")
    residual: bool = _opt(
        False,
        "Predict the noise and subtract it from the input (TomoGAN's original is a direct output).",
    )
    psz: int = _opt(256, "Training patch size in pixels (multiple of 8).")
    mbsz: int = _opt(16, "Mini-batch size.")
    maxiter: int = _opt(8000, "Training iterations (each: itg generator steps, itd critic steps).")
    itg: int = _opt(1, "Generator steps per iteration, each on a fresh batch.")
    itd: int = _opt(2, "Discriminator steps per iteration, each on a fresh batch.")
    lr_g: float = _opt(1e-4, "Adam learning rate of the generator.")
    lr_d: float = _opt(1e-4, "Adam learning rate of the discriminator.")
    gan_loss: str = _opt(
        "wgan-gp",
        "Adversarial loss: Wasserstein with gradient penalty, "
        "Wasserstein with weight clipping, or binary cross-entropy.",
        list(GAN_LOSSES),
    )
    lmse: float = _opt(1.0, "Weight of the pixel MSE.")
    ladv: float = _opt(6e-4, "Weight of the adversarial term; 0 trains without a discriminator.")
    lperc: float = _opt(6e-5, "Weight of the VGG19 perceptual term; 0 disables it.")
    vgg_weights: str = _opt(
        "imagenet",
        "VGG19 weights for the perceptual loss: 'imagenet' "
        "(Keras download, cached in ~/.keras/models), a local .h5 file, "
        "or 'none' to train without the perceptual term.",
    )
    gp_weight: float = _opt(10.0, "Gradient-penalty weight for wgan-gp.")
    wgan_clip: float = _opt(0.01, "Critic weight clipping for wgan.")
    val_every: int = _opt(100, "Validate, log images and checkpoint every this many iterations.")
    val_slices: int = _opt(16, "Validation slices, evenly spaced over the stack (0 = all).")
    log_every: int = _opt(10, "Write training losses to TensorBoard every this many iterations.")
    seed: int = _opt(0, "Seed of weights and patch sampling; the same seed repeats the run.")
    augment: bool = _opt(True, "Random flips and 90-degree rotations of the training patches.")
    ns_key: str = _opt("train_ns", "Noisy training stack (N, H, W) in the HDF5 file.")
    gt_key: str = _opt("train_gt", "Clean training stack, aligned slice by slice with --ns_key.")
    val_ns_key: str = _opt("test_ns", "Noisy validation stack.")
    val_gt_key: str = _opt("test_gt", "Clean validation stack.")
    norm_low: float = _opt(0.5, "Percentile of the noisy training data mapped to 0.")
    norm_high: float = _opt(99.5, "Percentile of the noisy training data mapped to 1.")
    max_keep: int = _opt(3, "Checkpoints kept in the run directory.")

    # Fitted from the data on the first start, then reused (resume, inference).
    normalization: dict | None = field(default=None, metadata={"flag": False})

    # Settings that must not change when a run is resumed: they shape the weights, the
    # normalisation, or the patch stream a resumed run continues.
    FROZEN = (
        "model",
        "depth",
        "residual",
        "psz",
        "mbsz",
        "itg",
        "itd",
        "seed",
        "gan_loss",
        "norm_low",
        "norm_high",
        "ns_key",
        "gt_key",
        "augment",
    )

    def validate(self) -> TrainConfig:
        """Raise `InputError` for settings that cannot work."""
        problems = []
        if not self.h5:
            problems.append("--h5 is required")
        if self.depth < 1 or self.depth % 2 == 0:
            problems.append(f"--depth must be a positive odd number, got {self.depth}")
        if self.psz < 8 or self.psz % 8:
            problems.append(f"--psz must be a positive multiple of 8, got {self.psz}")
        for name in ("mbsz", "maxiter", "itg", "val_every", "log_every", "max_keep"):
            if getattr(self, name) < 1:
                problems.append(f"--{name} must be at least 1")
        if self.itd < 0 or self.val_slices < 0:
            problems.append("--itd and --val_slices must not be negative")
        for name in ("lmse", "ladv", "lperc", "lr_g", "lr_d", "gp_weight", "wgan_clip"):
            if getattr(self, name) < 0:
                problems.append(f"--{name} must not be negative")
        if self.uses_perceptual and self.psz < 32:
            problems.append("--psz must be at least 32 for the VGG perceptual loss (5 poolings)")
        if self.ladv > 0 and self.itd == 0:
            problems.append("--ladv > 0 needs --itd >= 1 to train the discriminator")
        if not 0 <= self.norm_low < self.norm_high <= 100:
            problems.append("need 0 <= --norm_low < --norm_high <= 100")
        if self.gan_loss not in GAN_LOSSES:
            problems.append(f"--gan_loss must be one of {', '.join(GAN_LOSSES)}")
        if self.model not in GENERATORS:
            problems.append(f"--model must be one of {', '.join(sorted(GENERATORS))}")
        if problems:
            raise InputError(None, "; ".join(problems))
        return self

    @property
    def uses_discriminator(self) -> bool:
        return self.ladv > 0

    @property
    def uses_perceptual(self) -> bool:
        return self.lperc > 0 and self.vgg_weights.lower() != "none"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    @classmethod
    def load(cls, path: str) -> TrainConfig:
        try:
            with open(path) as f:
                return cls.from_dict(json.load(f))
        except (OSError, ValueError) as err:
            raise InputError(path, f"cannot read run config: {err}") from None

    def save(self, path: str) -> None:
        """Write as JSON under a temporary name, then rename (never a half-written file)."""
        write_json_atomic(self.to_dict(), path)
