"""Every setting of a training run, in small typed sections.

A `TrainConfig` holds five sections of settings (`DataConfig`, `ModelConfig`,
`LossConfig`, `ScheduleConfig`, `RunConfig`) and, apart from them, what was fitted
from the data on the first start (`Fitted`). Each setting is declared once, here:
its type, default, help, allowed values and whether a resumed run may change it.
The command-line flags of ``python -m tomogan_tf.train`` are generated from these
declarations (`settings`), ``config.json`` in the run directory is `to_dict`, and
notebooks build a config with ``TrainConfig.from_settings(h5="data.h5", model="adl")``
or section by section.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from typing import Any

from tomogan_tf.choices import GAN_LOSSES, GRID_FILLS, MASKS, STRATEGIES, VGG_NETWORKS
from tomogan_tf.data.layouts import LAYOUTS, get_layout
from tomogan_tf.errors import InputError
from tomogan_tf.models.families import FAMILIES, get_family
from tomogan_tf.training.defaults import MODES, defaults_for
from tomogan_tf.utils.files import write_json_atomic
from tomogan_tf.utils.precision import PRECISIONS

LR_SCHEDULES = ("constant", "cosine")
NORMS = ("image", "fixed")
CONFIG_FORMAT = 2  # config.json: 1 = one flat dict (before sections), 2 = sections


def setting(
    default: Any = None,
    help: str = "",
    *,
    choices: typing.Sequence[str] | None = None,
    minimum: float | None = None,
    frozen: bool = False,
    flag: str | None = None,
    per_family: bool = False,
) -> Any:
    """Declare one setting.

    ``minimum``: smallest allowed value; ``frozen``: a resumed run must keep it (it
    shapes the weights, the normalisation or the patch stream being continued);
    ``flag``: the flag's name when it differs from the field's; ``per_family``: left
    unset (None) it takes its family's and mode's value (`tomogan_tf.training.defaults`).
    """
    return field(
        default=default,
        metadata=dict(
            help=help,
            choices=None if choices is None else tuple(choices),
            minimum=minimum,
            frozen=frozen,
            flag=flag,
            per_family=per_family,
        ),
    )


@dataclass
class DataConfig:
    """What is read, and how it is cut into patches and normalised."""

    h5: str | None = setting(None, "HDF5 file with the training and validation stacks.")
    layout: str = setting(
        "tomogan",
        "HDF5 layout of --h5: named stacks (tomogan: --ns_key, --gt_key, ...) or Data"
        " Exchange projections (dxchange: /exchange/data, flats and darks; n2s or n2n).",
        choices=LAYOUTS,
        frozen=True,
    )
    mode: str = setting(
        "supervised",
        "What the generator learns from: clean targets (supervised), a second independent"
        " noisy measurement of each slice (n2n, Noise2Noise), the noisy images alone"
        " with J-invariant masking (n2s, Noise2Self), or K sub-reconstructions from"
        " disjoint projection angles, each predicted from the mean of the others (n2i,"
        " Noise2Inverse: --h5 holds them as --split_key, or is a Data Exchange scan with"
        " --layout dxchange, reconstructed into the run directory).",
        choices=MODES,
        frozen=True,
    )
    target_h5: str | None = setting(
        None,
        "n2n: HDF5 file holding the second noisy measurement (default: --h5 itself;"
        " required with --layout dxchange: a second Data Exchange file of the same scan).",
        frozen=True,
    )
    ns_key: str = setting(
        "train_ns", "Noisy training stack (N, H, W) in the HDF5 file.", frozen=True
    )
    gt_key: str | None = setting(
        None,
        "Target training stack, aligned slice by slice with --ns_key: clean (supervised,"
        " default train_gt) or the second noisy measurement (n2n, default train_ns2, or"
        " --ns_key's name in --target_h5).",
        frozen=True,
    )
    val_ns_key: str = setting("test_ns", "Noisy validation stack.")
    val_gt_key: str | None = setting(
        None,
        "Target validation stack (default test_gt; n2n: test_ns2, or --val_ns_key's name"
        " in --target_h5).",
    )
    minus_log: bool = setting(
        False,
        "dxchange: train on line integrals -log((data - dark) / (flat - dark)) instead"
        " of transmission.",
        frozen=True,
    )
    val_fraction: float = setting(
        0.1,
        "dxchange: fraction of projections (the last ones) held out for validation;"
        " n2i: fraction of slices (the last ones).",
        frozen=True,
    )
    splits: int = setting(
        4,
        "n2i: K, the disjoint angle subsets the scan is reconstructed from (angle i goes"
        " to subset i mod K).",
        minimum=2,
        frozen=True,
    )
    split_key: str = setting(
        "split_{k}",
        "n2i: the sub-reconstruction stacks in --h5, {k} = 0..K-1 (what"
        " tomogan_tf.reconstruct --splits K writes).",
        frozen=True,
    )
    centre: float | None = setting(
        None,
        "n2i --layout dxchange: rotation axis as a detector column (default: the middle).",
        frozen=True,
    )
    psz: int | None = setting(
        None,
        "Training patch size in pixels (multiple of 8; cube side in 3-D).",
        frozen=True,
        per_family=True,
    )
    mbsz: int | None = setting(None, "Mini-batch size.", minimum=1, frozen=True, per_family=True)
    augment: bool = setting(
        True, "Random flips and 90-degree rotations of the training patches.", frozen=True
    )
    val_slices: int = setting(
        16,
        "Validation slices, evenly spaced over the stack (0 = all); "
        "3-D: validation cubes of side --psz.",
        minimum=0,
    )
    norm: str = setting(
        "image",
        "image: every slice mapped by its own noisy --norm_low/--norm_high percentiles, in"
        " training and at inference (the model then works in any units: 1/mm, HU, counts);"
        " fixed: one window fitted to the noisy training stack, for data whose absolute"
        " values matter (inputs must then come in the training data's units).",
        choices=NORMS,
        frozen=True,
    )
    norm_low: float = setting(0.5, "Percentile of the noisy data mapped to 0.", frozen=True)
    norm_high: float = setting(99.5, "Percentile of the noisy data mapped to 1.", frozen=True)


@dataclass
class ModelConfig:
    """Which network is trained."""

    family: str = setting("tomogan", "Model family.", choices=FAMILIES, frozen=True, flag="model")
    depth: int = setting(
        1,
        "Adjacent slices stacked as input channels (odd); centre one is denoised. "
        "3-D models (adl3d) read sub-volumes instead and take 1.",
        frozen=True,
    )
    residual: bool = setting(
        False,
        "TomoGAN only: predict the noise and subtract it from the input "
        "(the paper's is a direct output; idgan is always residual).",
        frozen=True,
    )
    init_from: str | None = setting(
        None,
        "Start from a trained model's weights, in any --mode (adapting it to this data): a"
        " run directory, a .keras file with its run's config.json, or 'shipped'. --model,"
        " --depth, --residual and the normalisation follow it (giving others is refused);"
        " the first start loads it, a resume continues from the checkpoint.",
    )

    @property
    def dims(self) -> int:
        return get_family(self.family).dims

    @property
    def input_multiple(self) -> int:
        return get_family(self.family).input_multiple


@dataclass
class LossConfig:
    """What the generator (and the critic) are scored by. Weights suit images in [0, 1]."""

    gan_loss: str | None = setting(
        None,
        "Adversarial loss: Wasserstein with gradient penalty, Wasserstein with weight "
        "clipping, binary cross-entropy or hinge.",
        choices=GAN_LOSSES,
        frozen=True,
        per_family=True,
    )
    lmse: float | None = setting(
        None, "Weight of the pixel MSE (at every output scale).", minimum=0, per_family=True
    )
    ll1: float | None = setting(
        None, "Weight of the pixel L1 (at every output scale).", minimum=0, per_family=True
    )
    lpyr: float | None = setting(
        None, "Weight of ADL's a-trous pyramid (edge) loss, every scale.", minimum=0,
        per_family=True,
    )  # fmt: skip
    lhist: float | None = setting(
        None, "Weight of ADL's soft-histogram loss, every scale.", minimum=0, per_family=True
    )
    lsmooth: float | None = setting(
        None, "Weight of ImageDenoisingGAN's smoothness term.", minimum=0, per_family=True
    )
    ladv: float | None = setting(
        None,
        "Weight of the adversarial term; 0 trains without a discriminator.",
        minimum=0,
        per_family=True,
    )
    lperc: float | None = setting(
        None, "Weight of the VGG perceptual term; 0 disables it.", minimum=0, per_family=True
    )
    vgg: str | None = setting(
        None, "VGG network of the perceptual term.", choices=VGG_NETWORKS, per_family=True
    )
    vgg_layer: str | None = setting(
        None, "VGG layer whose features the perceptual term compares.", per_family=True
    )
    vgg_weights: str = setting(
        "imagenet",
        "VGG weights for the perceptual loss: 'imagenet' "
        "(Keras download, cached in ~/.keras/models), a local .h5 file, "
        "or 'none' to train without the perceptual term.",
    )
    gp_weight: float = setting(10.0, "Gradient-penalty weight for wgan-gp.", minimum=0)
    wgan_clip: float = setting(0.01, "Critic weight clipping for wgan.", minimum=0)
    mask: str = setting(
        "grid",
        "n2s: pixels hidden per step: a period-4 grid whose phase cycles (grid), or"
        " Noise2Void blind spots replaced by a random neighbour (random).",
        choices=MASKS,
        frozen=True,
    )
    mask_fill: str = setting(
        "mean",
        "n2s grid mask: hidden pixels take the mean of their neighbours, or zero.",
        choices=GRID_FILLS,
        frozen=True,
    )

    @property
    def uses_discriminator(self) -> bool:
        return self.ladv > 0

    @property
    def uses_perceptual(self) -> bool:
        return self.lperc > 0 and self.vgg_weights.lower() != "none"

    @classmethod
    def for_family(cls, family: str = "tomogan", mode: str = "supervised", **changes) -> LossConfig:
        """The family's (and mode's) losses, with ``changes`` on top, every field set."""
        return _resolve(cls(**changes), defaults_for(family, mode))


@dataclass
class ScheduleConfig:
    """How long, how fast, and in which order the two networks train."""

    maxiter: int = setting(
        8000, "Training iterations (each: itg generator steps, itd critic steps).", minimum=1
    )
    itg: int = setting(
        1, "Generator steps per iteration, each on a fresh batch.", minimum=1, frozen=True
    )
    itd: int | None = setting(
        None,
        "Discriminator steps per iteration, each on a fresh batch.",
        minimum=0,
        frozen=True,
        per_family=True,
    )
    d_every: int | None = setting(
        None,
        "After the warm-ups, run the discriminator steps every this many iterations.",
        minimum=1,
        per_family=True,
    )
    g_warmup: int | None = setting(
        None,
        "First iterations train the generator alone (no adversarial term, no critic).",
        minimum=0,
        per_family=True,
    )
    d_warmup: int | None = setting(
        None,
        "Then iterations that train the critic alone against the warmed-up generator.",
        minimum=0,
        per_family=True,
    )
    lr_g: float = setting(1e-4, "Adam learning rate of the generator.", minimum=0)
    lr_d: float | None = setting(
        None, "Adam learning rate of the discriminator.", minimum=0, per_family=True
    )
    lr_schedule: str = setting(
        "constant",
        "constant, or cosine: both learning rates decay along a cosine to 5 percent of their"
        " value at --maxiter (a fixed budget converges further).",
        choices=LR_SCHEDULES,
        frozen=True,
    )
    val_every: int = setting(
        100, "Validate, log images and checkpoint every this many iterations.", minimum=1
    )
    log_every: int = setting(
        10, "Write training losses to TensorBoard every this many iterations.", minimum=1
    )

    @classmethod
    def for_family(cls, family: str = "tomogan", **changes) -> ScheduleConfig:
        """The family's schedule, with ``changes`` on top, every field set."""
        return _resolve(cls(**changes), defaults_for(family, "supervised"))


@dataclass
class RunConfig:
    """Where the run lives and what makes it repeatable."""

    logdir: str = setting(
        "runs/tomogan",
        "Run directory: config, checkpoints, logs, models. "
        "Training resumes if it already holds a run.",
    )
    seed: int = setting(
        0, "Seed of weights and patch sampling; the same seed repeats the run.", frozen=True
    )
    max_keep: int = setting(3, "Checkpoints kept in the run directory.", minimum=1)
    precision: str = setting(
        "float32",
        "Compute precision: float32, or mixed bfloat16/float16 (weights, losses and"
        " metrics stay float32; float16 with loss scaling); auto: as for"
        " tomogan_tf.denoise (16 bits where the hardware computes them natively and they"
        " cost the shipped model at most 0.05 dB). A resume may change it.",
        choices=PRECISIONS,
    )
    strategy: str = setting(
        "auto",
        "Devices and machines to train on (tf.distribute): none (one device), mirrored"
        " (all GPUs of this machine, replicas in sync), multiworker (the processes of a"
        " TF_CONFIG cluster, each with its GPUs); auto: multiworker under a TF_CONFIG"
        " cluster of several workers, else mirrored with more than one GPU, else none."
        " --mbsz is the global batch, split over the replicas. A resume may change it.",
        choices=STRATEGIES,
    )


@dataclass
class Fitted:
    """What the first start fitted from the data, then reused by resumes and inference."""

    # The normalisation's `to_dict` (per-image percentiles, or a fixed window).
    normalization: dict | None = None
    # dxchange: whether the projections had flat fields to divide by (inference checks).
    flat_field: bool | None = None


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "schedule": ScheduleConfig,
    "run": RunConfig,
}


@dataclass(frozen=True)
class Setting:
    """One declared setting, as the flag generator and the checks see it."""

    section: str
    name: str  # the field's name in its section
    flag: str  # the command-line flag's (and the flat settings') name
    type: type  # int, float, bool or str
    optional: bool
    default: Any
    help: str
    choices: tuple[str, ...] | None
    minimum: float | None
    frozen: bool
    per_family: bool


def _base_type(hint: Any) -> tuple[type, bool]:
    """(int|float|bool|str, optional) of a field's type hint such as ``int | None``."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if not args:
        return hint, False
    return args[0], len(args) < len(typing.get_args(hint))


def settings() -> list[Setting]:
    """Every declared setting, section by section, with its real (resolved) type."""
    out = []
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            kind, optional = _base_type(hints[f.name])
            meta = f.metadata
            out.append(
                Setting(section, f.name, meta["flag"] or f.name, kind, optional, f.default,
                        meta["help"], meta["choices"], meta["minimum"], meta["frozen"],
                        meta["per_family"])
            )  # fmt: skip
    return out


_BY_FLAG = {s.flag: s for s in settings()}


def _resolve(section, defaults: dict[str, Any]):
    for f in dataclasses.fields(section):
        if f.metadata.get("per_family") and getattr(section, f.name) is None:
            setattr(section, f.name, defaults[f.name])
    return section


@dataclass
class TrainConfig:
    """Settings of one training run, by section, and what was fitted from its data.

    Example:
    >>> config = TrainConfig.from_settings(h5="data.h5", model="adl", maxiter=100)
    >>> config.validate().data.psz, config.loss.lhist
    (256, 0.1)
    """

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    run: RunConfig = field(default_factory=RunConfig)
    fitted: Fitted = field(default_factory=Fitted)

    @classmethod
    def from_settings(cls, **values: Any) -> TrainConfig:
        """A config from flat settings named as the flags are (``h5=``, ``model=``, ...)."""
        unknown = sorted(set(values) - set(_BY_FLAG))
        if unknown:
            raise TypeError(f"unknown settings: {', '.join(unknown)}")
        sections: dict[str, dict[str, Any]] = {name: {} for name in SECTIONS}
        for flag, value in values.items():
            s = _BY_FLAG[flag]
            sections[s.section][s.name] = value
        return cls(**{name: SECTIONS[name](**kw) for name, kw in sections.items()})

    def flat(self) -> dict[str, Any]:
        """Every setting under its flag's name, and the fitted state (``normalization``,
        ``flat_field``): what older code and ``config.json`` files before sections hold."""
        out = {s.flag: getattr(getattr(self, s.section), s.name) for s in settings()}
        return {**out, **dataclasses.asdict(self.fitted)}

    def get(self, flag: str) -> Any:
        """The setting named as its flag is."""
        s = _BY_FLAG[flag]
        return getattr(getattr(self, s.section), s.name)

    def resolve_defaults(self) -> TrainConfig:
        """Give every unset family- or mode-dependent setting its family's or mode's value."""
        defaults = defaults_for(self.model.family, self.data.mode)
        for name in SECTIONS:
            _resolve(getattr(self, name), defaults)
        return self

    def set(self, flag: str, value: Any) -> None:
        """Set the setting named as its flag is."""
        s = _BY_FLAG[flag]
        setattr(getattr(self, s.section), s.name, value)

    def validate(self) -> TrainConfig:
        """Resolve the defaults; raise `InputError` for settings that cannot work.

        With ``init_from`` the architecture and normalisation are first taken from
        that model (`tomogan_tf.training.init_from.follow_source`).
        """
        if self.model.init_from:
            from tomogan_tf.training.init_from import follow_source

            follow_source(self)
        if self.model.family not in FAMILIES:
            raise InputError(None, f"--model must be one of {', '.join(FAMILIES)}")
        if self.data.layout not in LAYOUTS:
            raise InputError(None, f"--layout must be one of {', '.join(LAYOUTS)}")
        self.resolve_defaults()
        layout = get_layout(self.data.layout)
        for name, value in layout.default_keys(self.data).items():
            if getattr(self.data, name) is None:
                setattr(self.data, name, value)
        problems = self._combination_problems() + self._declared_problems()
        problems += layout.problems(self.data)
        if problems:
            raise InputError(None, "; ".join(problems))
        return self

    def _declared_problems(self) -> list[str]:
        """Values outside what their declarations allow (choices, minimum)."""
        problems = []
        for s in settings():
            value = getattr(getattr(self, s.section), s.name)
            if value is None:
                continue
            if s.choices and value not in s.choices:
                problems.append(f"--{s.flag} must be one of {', '.join(s.choices)}")
            elif s.minimum is not None and value < s.minimum:
                least = f"must be at least {s.minimum:g}" if s.minimum else "must not be negative"
                problems.append(f"--{s.flag} {least}")
        return problems

    def _combination_problems(self) -> list[str]:
        """Settings that cannot work together (or one alone, beyond a simple bound)."""
        data, model, loss, schedule = self.data, self.model, self.loss, self.schedule
        problems = []
        if not data.h5:
            problems.append("--h5 is required")
        if model.depth < 1 or model.depth % 2 == 0:
            problems.append(f"--depth must be a positive odd number, got {model.depth}")
        if model.dims == 3 and model.depth != 1:
            problems.append(f"--model {model.family} reads sub-volumes: --depth must be 1")
        if model.residual and model.family != "tomogan":
            problems.append("--residual applies to --model tomogan only")
        if data.psz < 8 or data.psz % 8:
            problems.append(f"--psz must be a positive multiple of 8, got {data.psz}")
        elif model.dims == 3 and data.psz < 16:
            # Validation cubes have side --psz, and SSIM needs 11x11 windows in each slice.
            problems.append(
                f"--model {model.family} validates on cubes of side --psz:"
                f" it must be at least 16, got {data.psz}"
            )
        if max(loss.lmse, loss.ll1, loss.lpyr, loss.lhist) == 0:
            problems.append("one of --lmse, --ll1, --lpyr, --lhist must be positive")
        if loss.uses_perceptual and model.dims == 3:
            problems.append(
                f"--model {model.family} is 3-D; the VGG perceptual term needs --lperc 0"
            )
        if loss.uses_perceptual and data.psz < 32:
            problems.append("--psz must be at least 32 for the VGG perceptual loss")
        if loss.ladv > 0 and schedule.itd == 0:
            problems.append("--ladv > 0 needs --itd >= 1 to train the discriminator")
        if not 0 <= data.norm_low < data.norm_high <= 100:
            problems.append("need 0 <= --norm_low < --norm_high <= 100")
        if data.mode == "n2s":
            whole_image = [f"--{n}" for n in ("lpyr", "lhist", "lperc") if getattr(loss, n) > 0]
            if whole_image:
                problems.append(
                    f"--mode n2s scores only the hidden pixels; {', '.join(whole_image)}"
                    " compare whole images and would teach the identity: set them to 0"
                )
            if max(loss.lmse, loss.ll1) == 0:
                problems.append("--mode n2s needs --lmse or --ll1 > 0")
            if data.gt_key or data.val_gt_key:
                problems.append("--mode n2s learns from the noisy stack alone: drop --gt_key")
        if data.mode == "n2i":
            if model.dims == 3:
                problems.append(
                    f"--mode n2i trains on slices; --model {model.family} is 3-D: use a 2-D model"
                )
            if data.gt_key or data.val_gt_key:
                problems.append(
                    "--mode n2i pairs the sub-reconstructions with each other: drop --gt_key"
                )
            if "{k}" not in data.split_key:
                problems.append(f"--split_key must contain {{k}}, got '{data.split_key}'")
        elif data.centre is not None:
            problems.append("--centre applies to --mode n2i --layout dxchange only")
        if not 0 < data.val_fraction < 1:
            problems.append("--val_fraction must be between 0 and 1")
        if data.target_h5 and data.mode != "n2n":
            problems.append("--target_h5 applies to --mode n2n only")
        return problems

    def changed_frozen(self, saved: TrainConfig) -> list[str]:
        """``--flag old -> new`` for each setting a resume may not change."""
        changed = [
            f"--{s.flag} {saved.get(s.flag)} -> {self.get(s.flag)}"
            for s in settings()
            if s.frozen and saved.get(s.flag) != self.get(s.flag)
        ]
        if saved.loss.uses_discriminator != self.loss.uses_discriminator:
            changed.append(
                f"--ladv {saved.loss.ladv} -> {self.loss.ladv} (adds or drops the discriminator)"
            )
        return changed

    def to_dict(self) -> dict:
        return {"format": CONFIG_FORMAT, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """From `to_dict`, or from the one flat dict written before sections existed."""
        if not isinstance(d.get("data"), dict):  # format 1: flat, the flags' names
            known = {k: v for k, v in d.items() if k in _BY_FLAG}
            config = cls.from_settings(**known)
            config.fitted = Fitted(d.get("normalization"), d.get("flat_field"))
            return config
        parts = {}
        for name, section in {**SECTIONS, "fitted": Fitted}.items():
            names = {f.name for f in dataclasses.fields(section)}
            parts[name] = section(**{k: v for k, v in d.get(name, {}).items() if k in names})
        return cls(**parts)

    @classmethod
    def load(cls, path: str) -> TrainConfig:
        try:
            with open(path) as f:
                return cls.from_dict(json.load(f))
        except (OSError, ValueError, TypeError, AttributeError) as err:
            raise InputError(path, f"cannot read run config: {err}") from None

    def save(self, path: str) -> None:
        """Write as JSON under a temporary name, then rename (never a half-written file)."""
        write_json_atomic(self.to_dict(), path)
