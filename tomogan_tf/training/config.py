"""Every setting of a training run, in one dataclass.

The command-line flags of ``python -m tomogan_tf.train`` are generated from these
fields, the run directory's ``config.json`` is this dataclass plus the fitted
normalisation, and notebooks build a `TrainConfig` directly.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

from tomogan_tf.data.masking import GRID_FILLS, MASKS
from tomogan_tf.errors import InputError
from tomogan_tf.losses import GAN_LOSSES, VGG_NETWORKS
from tomogan_tf.models import FAMILIES, get_family
from tomogan_tf.utils.files import write_json_atomic

# Settings whose best value depends on the model family; a flag left unset (None)
# takes its family's value. TomoGAN's are the TomoGAN paper's, ADL's the ADL
# paper's (batch and patch scaled down for CPUs; the histogram weight, which the
# original's gradient-free histogram never exercised, set to 0.1 from measurements:
# README), ImageDenoisingGAN's its blog's.
_COMMON = dict(
    psz=256,
    mbsz=16,
    itd=1,
    d_every=1,
    g_warmup=0,
    d_warmup=0,
    lr_d=1e-4,
    lmse=0.0,
    ll1=0.0,
    lpyr=0.0,
    lhist=0.0,
    lsmooth=0.0,
    lperc=0.0,
    vgg="vgg19",
    vgg_layer="block5_pool",
)
_ADL = dict(
    _COMMON,
    mbsz=4,
    d_every=3,
    g_warmup=1000,
    d_warmup=200,
    lr_d=5e-5,
    gan_loss="hinge",
    ll1=1.0,
    lpyr=1.0,
    lhist=0.1,
    ladv=1e-3,
)
FAMILY_DEFAULTS: dict[str, dict] = {
    "tomogan": dict(_COMMON, itd=2, gan_loss="wgan-gp", lmse=1.0, ladv=6e-4, lperc=6e-5),
    "adl": _ADL,
    "adl3d": dict(_ADL, psz=64, mbsz=2),
    "idgan": dict(
        _COMMON,
        gan_loss="bce",
        lmse=1.0,
        lsmooth=1e-4,
        ladv=0.5,
        lperc=1.0,
        vgg="vgg16",
        vgg_layer="block2_conv2",
    ),
}


# Training modes: what the target of the generator is.
MODES = ("supervised", "n2n", "n2s")
LAYOUTS = ("tomogan", "dxchange")
# Per mode, the defaults that override the family's. Without clean images a critic
# or a VGG comparison has only noisy images to hold the output to, which teaches it
# noise, so both are off unless asked for; Noise2Self scores the hidden pixels
# only, which whole-image terms (pyramid, histogram, VGG) cannot do.
MODE_DEFAULTS: dict[str, dict] = {
    "supervised": dict(gt_key="train_gt", val_gt_key="test_gt"),
    "n2n": dict(gt_key="train_ns2", val_gt_key="test_ns2", ladv=0.0, lperc=0.0),
    "n2s": dict(ladv=0.0, lperc=0.0, lpyr=0.0, lhist=0.0),
}


def _opt(default, help: str, choices=None):
    return field(default=default, metadata={"help": help, "choices": choices})


def _family_opt(help: str, choices=None):
    """A field defaulting to None, resolved per model family by `TrainConfig.validate`."""
    return _opt(None, help, choices)


@dataclass
class TrainConfig:
    """Settings of one training run. Loss weights suit images normalised to [0, 1]."""

    h5: str = _opt(None, "HDF5 file with the training and validation stacks.")
    logdir: str = _opt(
        "runs/tomogan",
        "Run directory: config, checkpoints, logs, models. "
        "Training resumes if it already holds a run.",
    )
    model: str = _opt("tomogan", "Model family.", list(FAMILIES))
    mode: str = _opt(
        "supervised",
        "What the generator learns from: clean targets (supervised), a second independent"
        " noisy measurement of each slice (n2n, Noise2Noise), or the noisy images alone"
        " with J-invariant masking (n2s, Noise2Self).",
        list(MODES),
    )
    layout: str = _opt(
        "tomogan",
        "HDF5 layout of --h5: named stacks (tomogan: --ns_key, --gt_key, ...) or Data"
        " Exchange projections (dxchange: /exchange/data, flats and darks; n2s or n2n).",
        list(LAYOUTS),
    )
    depth: int = _opt(
        1,
        "Adjacent slices stacked as input channels (odd); centre one is denoised. "
        "3-D models (adl3d) read sub-volumes instead and take 1.",
    )
    residual: bool = _opt(
        False,
        "TomoGAN only: predict the noise and subtract it from the input "
        "(the paper's is a direct output; idgan is always residual).",
    )
    psz: int | None = _family_opt(
        "Training patch size in pixels (multiple of 8; cube side in 3-D)."
    )
    mbsz: int | None = _family_opt("Mini-batch size.")
    maxiter: int = _opt(8000, "Training iterations (each: itg generator steps, itd critic steps).")
    itg: int = _opt(1, "Generator steps per iteration, each on a fresh batch.")
    itd: int | None = _family_opt("Discriminator steps per iteration, each on a fresh batch.")
    d_every: int | None = _family_opt(
        "After the warm-ups, run the discriminator steps every this many iterations."
    )
    g_warmup: int | None = _family_opt(
        "First iterations train the generator alone (no adversarial term, no critic)."
    )
    d_warmup: int | None = _family_opt(
        "Then iterations that train the critic alone against the warmed-up generator."
    )
    lr_g: float = _opt(1e-4, "Adam learning rate of the generator.")
    lr_schedule: str = _opt(
        "constant",
        "constant, or cosine: both learning rates decay along a cosine to 5 percent of their"
        " value at --maxiter (a fixed budget converges further).",
        ["constant", "cosine"],
    )
    lr_d: float | None = _family_opt("Adam learning rate of the discriminator.")
    gan_loss: str | None = _family_opt(
        "Adversarial loss: Wasserstein with gradient penalty, Wasserstein with weight "
        "clipping, binary cross-entropy or hinge.",
        list(GAN_LOSSES),
    )
    lmse: float | None = _family_opt("Weight of the pixel MSE (at every output scale).")
    ll1: float | None = _family_opt("Weight of the pixel L1 (at every output scale).")
    lpyr: float | None = _family_opt("Weight of ADL's a-trous pyramid (edge) loss, every scale.")
    lhist: float | None = _family_opt("Weight of ADL's soft-histogram loss, every scale.")
    lsmooth: float | None = _family_opt("Weight of ImageDenoisingGAN's smoothness term.")
    ladv: float | None = _family_opt(
        "Weight of the adversarial term; 0 trains without a discriminator."
    )
    lperc: float | None = _family_opt("Weight of the VGG perceptual term; 0 disables it.")
    vgg: str | None = _family_opt("VGG network of the perceptual term.", list(VGG_NETWORKS))
    vgg_layer: str | None = _family_opt("VGG layer whose features the perceptual term compares.")
    vgg_weights: str = _opt(
        "imagenet",
        "VGG weights for the perceptual loss: 'imagenet' "
        "(Keras download, cached in ~/.keras/models), a local .h5 file, "
        "or 'none' to train without the perceptual term.",
    )
    mask: str = _opt(
        "grid",
        "n2s: pixels hidden per step: a period-4 grid whose phase cycles (grid), or"
        " Noise2Void blind spots replaced by a random neighbour (random).",
        list(MASKS),
    )
    mask_fill: str = _opt(
        "mean",
        "n2s grid mask: hidden pixels take the mean of their neighbours, or zero.",
        list(GRID_FILLS),
    )
    target_h5: str = _opt(
        None,
        "n2n: HDF5 file holding the second noisy measurement (default: --h5 itself;"
        " required with --layout dxchange: a second Data Exchange file of the same scan).",
    )
    minus_log: bool = _opt(
        False,
        "dxchange: train on line integrals -log((data - dark) / (flat - dark)) instead"
        " of transmission.",
    )
    val_fraction: float = _opt(
        0.1, "dxchange: fraction of projections (the last ones) held out for validation."
    )
    gp_weight: float = _opt(10.0, "Gradient-penalty weight for wgan-gp.")
    wgan_clip: float = _opt(0.01, "Critic weight clipping for wgan.")
    val_every: int = _opt(100, "Validate, log images and checkpoint every this many iterations.")
    val_slices: int = _opt(
        16,
        "Validation slices, evenly spaced over the stack (0 = all); "
        "3-D: validation cubes of side --psz.",
    )
    log_every: int = _opt(10, "Write training losses to TensorBoard every this many iterations.")
    seed: int = _opt(0, "Seed of weights and patch sampling; the same seed repeats the run.")
    augment: bool = _opt(True, "Random flips and 90-degree rotations of the training patches.")
    ns_key: str = _opt("train_ns", "Noisy training stack (N, H, W) in the HDF5 file.")
    gt_key: str | None = _opt(
        None,
        "Target training stack, aligned slice by slice with --ns_key: clean (supervised,"
        " default train_gt) or the second noisy measurement (n2n, default train_ns2, or"
        " --ns_key's name in --target_h5).",
    )
    val_ns_key: str = _opt("test_ns", "Noisy validation stack.")
    val_gt_key: str | None = _opt(
        None,
        "Target validation stack (default test_gt; n2n: test_ns2, or --val_ns_key's name"
        " in --target_h5).",
    )
    norm: str = _opt(
        "image",
        "image: every slice mapped by its own noisy --norm_low/--norm_high percentiles, in"
        " training and at inference (the model then works in any units: 1/mm, HU, counts);"
        " fixed: one window fitted to the noisy training stack, for data whose absolute"
        " values matter (inputs must then come in the training data's units).",
    )
    norm_low: float = _opt(0.5, "Percentile of the noisy data mapped to 0.")
    norm_high: float = _opt(99.5, "Percentile of the noisy data mapped to 1.")
    max_keep: int = _opt(3, "Checkpoints kept in the run directory.")

    # Fitted from the data on the first start, then reused (resume, inference).
    normalization: dict | None = field(default=None, metadata={"flag": False})
    # dxchange: whether the projections had flat fields to divide by (inference checks).
    flat_field: bool | None = field(default=None, metadata={"flag": False})

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
        "lr_schedule",
        "norm",
        "norm_low",
        "norm_high",
        "ns_key",
        "gt_key",
        "augment",
        "mode",
        "layout",
        "mask",
        "mask_fill",
        "minus_log",
        "val_fraction",
        "target_h5",
    )

    def resolve_defaults(self) -> TrainConfig:
        """Give every unset mode- or family-dependent setting its mode's or family's value."""
        defaults = {
            **FAMILY_DEFAULTS.get(self.model, FAMILY_DEFAULTS["tomogan"]),
            **MODE_DEFAULTS.get(self.mode, {}),
        }
        if self.mode == "n2n" and self.target_h5:
            # A second file of the same layout holds its stacks under the same names.
            defaults.update(gt_key=self.ns_key, val_gt_key=self.val_ns_key)
        for name, value in defaults.items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        return self

    def validate(self) -> TrainConfig:
        """Resolve the family defaults; raise `InputError` for settings that cannot work."""
        if self.model not in FAMILIES:
            raise InputError(None, f"--model must be one of {', '.join(FAMILIES)}")
        self.resolve_defaults()
        family = get_family(self.model)
        problems = []
        if not self.h5:
            problems.append("--h5 is required")
        if self.depth < 1 or self.depth % 2 == 0:
            problems.append(f"--depth must be a positive odd number, got {self.depth}")
        if family.dims == 3 and self.depth != 1:
            problems.append(f"--model {self.model} reads sub-volumes: --depth must be 1")
        if self.residual and self.model != "tomogan":
            problems.append("--residual applies to --model tomogan only")
        if self.psz < 8 or self.psz % 8:
            problems.append(f"--psz must be a positive multiple of 8, got {self.psz}")
        for name in ("mbsz", "maxiter", "itg", "d_every", "val_every", "log_every", "max_keep"):
            if getattr(self, name) < 1:
                problems.append(f"--{name} must be at least 1")
        for name in ("itd", "val_slices", "g_warmup", "d_warmup"):
            if getattr(self, name) < 0:
                problems.append(f"--{name} must not be negative")
        for name in (
            "lmse",
            "ll1",
            "lpyr",
            "lhist",
            "lsmooth",
            "ladv",
            "lperc",
            "lr_g",
            "lr_d",
            "gp_weight",
            "wgan_clip",
        ):
            if getattr(self, name) < 0:
                problems.append(f"--{name} must not be negative")
        if max(self.lmse, self.ll1, self.lpyr, self.lhist) == 0:
            problems.append("one of --lmse, --ll1, --lpyr, --lhist must be positive")
        if self.uses_perceptual and family.dims == 3:
            problems.append(f"--model {self.model} is 3-D; the VGG perceptual term needs --lperc 0")
        if self.uses_perceptual and self.psz < 32:
            problems.append("--psz must be at least 32 for the VGG perceptual loss")
        if self.ladv > 0 and self.itd == 0:
            problems.append("--ladv > 0 needs --itd >= 1 to train the discriminator")
        if self.lr_schedule not in ("constant", "cosine"):
            problems.append(f"--lr_schedule must be constant or cosine, got {self.lr_schedule!r}")
        if self.norm not in ("image", "fixed"):
            problems.append(f"--norm must be image or fixed, got {self.norm!r}")
        if not 0 <= self.norm_low < self.norm_high <= 100:
            problems.append("need 0 <= --norm_low < --norm_high <= 100")
        problems += self._mode_problems()
        if self.gan_loss not in GAN_LOSSES:
            problems.append(f"--gan_loss must be one of {', '.join(GAN_LOSSES)}")
        if self.vgg not in VGG_NETWORKS:
            problems.append(f"--vgg must be one of {', '.join(VGG_NETWORKS)}")
        if problems:
            raise InputError(None, "; ".join(problems))
        return self

    def _mode_problems(self) -> list[str]:
        problems = []
        for name, choices in (("mode", MODES), ("layout", LAYOUTS), ("mask", MASKS),
                              ("mask_fill", GRID_FILLS)):  # fmt: skip
            if getattr(self, name) not in choices:
                problems.append(f"--{name} must be one of {', '.join(choices)}")
        if self.mode == "n2s":
            whole_image = [f"--{n}" for n in ("lpyr", "lhist", "lperc") if getattr(self, n) > 0]
            if whole_image:
                problems.append(
                    f"--mode n2s scores only the hidden pixels; {', '.join(whole_image)}"
                    " compare whole images and would teach the identity: set them to 0"
                )
            if max(self.lmse, self.ll1) == 0:
                problems.append("--mode n2s needs --lmse or --ll1 > 0")
            if self.gt_key or self.val_gt_key:
                problems.append("--mode n2s learns from the noisy stack alone: drop --gt_key")
        if self.layout == "dxchange":
            if self.mode == "supervised":
                problems.append(
                    "Data Exchange files hold no clean images: use --mode n2s, or --mode n2n"
                    " with --target_h5"
                )
            if self.mode == "n2n" and not self.target_h5:
                problems.append(
                    "--mode n2n --layout dxchange needs --target_h5, a second Data Exchange"
                    " file of the same scan"
                )
            if not 0 < self.val_fraction < 1:
                problems.append("--val_fraction must be between 0 and 1")
        elif self.minus_log:
            problems.append("--minus_log applies to --layout dxchange only")
        if self.target_h5 and self.mode != "n2n":
            problems.append("--target_h5 applies to --mode n2n only")
        return problems

    def trainer_options(self) -> dict:
        """The `GANTrainer` keyword arguments these settings give (after `validate`)."""
        names = (
            "gan_loss", "lmse", "ll1", "lpyr", "lhist", "lsmooth", "ladv", "lperc",
            "itg", "itd", "d_every", "g_warmup", "d_warmup", "gp_weight", "wgan_clip",
            "mode", "mask", "mask_fill", "seed",
        )  # fmt: skip
        return {
            **{name: getattr(self, name) for name in names},
            "input_multiple": get_family(self.model).input_multiple,
        }

    @property
    def dims(self) -> int:
        return get_family(self.model).dims

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
