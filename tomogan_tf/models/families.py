"""The model families: what the tools know about each, without importing TensorFlow.

====== ============================================ ====== =====
family generator / discriminator                    dims   input
====== ============================================ ====== =====
tomogan TomoGAN U-Net / patch critic                2-D    x 8
adl     ADL Efficient-UNet, 3 scales / U-Net critic 2-D    x 8
adl3d   the same with 3-D convolutions              3-D    x 8
idgan   ImageDenoisingGAN ResNet / patch critic     2-D    any
====== ============================================ ====== =====

The builders are named by module and imported (with Keras and TensorFlow) when a
family's ``generator`` or ``discriminator`` is first asked for, so that the
settings and the command-line tools can check a family's name, input multiple and
dimensionality before TensorFlow loads.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Three stride-2 stages put the bridge at H/8; a "same" stride-2 conv rounds odd
# sizes up while a stride-2 transposed conv exactly doubles, so the decoder only
# meets its skips when every encoder level has even sizes: H, W (and D) must be
# multiples of 8. The project notes say 16, which is also valid (a multiple of 16
# is a multiple of 8) but stricter than this network needs.
INPUT_MULTIPLE_ADL = 8


def _builder(target: str, options: dict[str, Any]) -> Callable[..., Any]:
    module, name = target.split(":")
    build = getattr(importlib.import_module(module), name)
    return functools.partial(build, **options) if options else build


@dataclass(frozen=True)
class ModelFamily:
    """What the tools need to know about a family besides its builders.

    Attributes:
        generator_builder / discriminator_builder: ``"module:function"`` of the
            builders; the generator's takes ``depth`` (and ``residual`` for TomoGAN),
            the discriminator's ``patch_size`` when ``fixed_size_critic``.
        input_multiple: spatial sizes of the generator's input must divide by this.
        dims: 2 for (batch, H, W, depth) images, 3 for (batch, D, H, W, 1) volumes.
        fixed_size_critic: the critic ends in a dense layer, so it is built for one
            patch size.
        multiscale: the generator returns ``[full, half, quarter]`` images.
        generator_options / discriminator_options: keyword arguments bound to the
            builders (the 3-D family reuses the 2-D builders with ``dims=3``).
    """

    generator_builder: str
    discriminator_builder: str
    input_multiple: int
    dims: int = 2
    fixed_size_critic: bool = False
    multiscale: bool = False
    generator_options: dict[str, Any] = field(default_factory=dict)
    discriminator_options: dict[str, Any] = field(default_factory=dict)

    @property
    def generator(self) -> Callable[..., Any]:
        """The generator's builder (imports the model's module, and TensorFlow)."""
        return _builder(self.generator_builder, self.generator_options)

    @property
    def discriminator(self) -> Callable[..., Any]:
        """The discriminator's builder (imports the model's module, and TensorFlow)."""
        return _builder(self.discriminator_builder, self.discriminator_options)


_ADL = "tomogan_tf.models.adl"

FAMILIES: dict[str, ModelFamily] = {
    "tomogan": ModelFamily(
        "tomogan_tf.models.tomogan:tomogan_generator",
        "tomogan_tf.models.tomogan:tomogan_discriminator",
        input_multiple=8,
        fixed_size_critic=True,
    ),
    "adl": ModelFamily(
        f"{_ADL}:adl_denoiser",
        f"{_ADL}:adl_discriminator",
        input_multiple=INPUT_MULTIPLE_ADL,
        multiscale=True,
    ),
    "adl3d": ModelFamily(
        f"{_ADL}:adl_denoiser",
        f"{_ADL}:adl_discriminator",
        input_multiple=INPUT_MULTIPLE_ADL,
        dims=3,
        multiscale=True,
        generator_options={"dims": 3, "name": "adl3d_denoiser"},
        discriminator_options={"dims": 3, "name": "adl3d_discriminator"},
    ),
    "idgan": ModelFamily(
        "tomogan_tf.models.idgan:idgan_generator",
        "tomogan_tf.models.idgan:idgan_discriminator",
        input_multiple=1,
    ),
}


def get_family(name: str) -> ModelFamily:
    """The `ModelFamily` called ``name``; `ValueError` naming the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None
