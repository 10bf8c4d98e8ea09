"""The one table of defaults that depend on the model family and the training mode.

A setting left unset (None) takes its family's value, then its mode's override.
TomoGAN's are the TomoGAN paper's, ADL's the ADL paper's (batch and patch scaled
down for CPUs; the histogram weight, which the original's gradient-free histogram
never exercised, set to 0.1 from measurements: README), ImageDenoisingGAN's its
blog's. Without clean images a critic or a VGG comparison has only noisy images to
hold the output to, which teaches it noise, so both are off in the self-supervised
modes unless asked for; Noise2Self scores the hidden pixels only, which whole-image
terms (pyramid, histogram, VGG) cannot do. Which stacks a mode reads by default is
the layout's business (`tomogan_tf.data.layouts`).
"""

from __future__ import annotations

from typing import Any

_COMMON: dict[str, Any] = dict(
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
_ADL: dict[str, Any] = dict(
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

#: Per model family, the value of every family-dependent setting.
FAMILY_DEFAULTS: dict[str, dict[str, Any]] = {
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

#: Training modes (what the generator's target is) and what each overrides.
MODE_DEFAULTS: dict[str, dict[str, Any]] = {
    "supervised": {},
    "n2n": dict(ladv=0.0, lperc=0.0),
    "n2s": dict(ladv=0.0, lperc=0.0, lpyr=0.0, lhist=0.0),
    "n2i": dict(ladv=0.0, lperc=0.0),
}
MODES = tuple(MODE_DEFAULTS)


def defaults_for(family: str, mode: str) -> dict[str, Any]:
    """Every family- and mode-dependent setting's value for this family and mode."""
    return {
        **FAMILY_DEFAULTS.get(family, FAMILY_DEFAULTS["tomogan"]),
        **MODE_DEFAULTS.get(mode, {}),
    }


def describe_default(name: str) -> str:
    """How ``--help`` states a family-dependent default: one value, or one per family/mode."""
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
