"""Model families, built by name so that every tool selects them the same way.

====== ============================================ ====== =====
family generator / discriminator                    dims   input
====== ============================================ ====== =====
tomogan TomoGAN U-Net / patch critic                2-D    x 8
adl     ADL Efficient-UNet, 3 scales / U-Net critic 2-D    x 8
adl3d   the same with 3-D convolutions              3-D    x 8
idgan   ImageDenoisingGAN ResNet / patch critic     2-D    any
====== ============================================ ====== =====
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import keras

from tomogan_tf.models.adl import INPUT_MULTIPLE_ADL, adl_denoiser, adl_discriminator
from tomogan_tf.models.idgan import idgan_discriminator, idgan_generator
from tomogan_tf.models.tomogan import tomogan_discriminator, tomogan_generator


@dataclass(frozen=True)
class ModelFamily:
    """What the tools need to know about a family besides its builders.

    Attributes:
        generator: builder of the denoiser; takes ``depth`` (and ``residual`` for
            TomoGAN).
        discriminator: builder of the critic; takes ``patch_size`` when
            ``fixed_size_critic``.
        input_multiple: spatial sizes of the generator's input must divide by this.
        dims: 2 for (batch, H, W, depth) images, 3 for (batch, D, H, W, 1) volumes.
        fixed_size_critic: the critic ends in a dense layer, so it is built for one
            patch size.
        multiscale: the generator returns ``[full, half, quarter]`` images.
    """

    generator: Callable[..., keras.Model]
    discriminator: Callable[..., keras.Model]
    input_multiple: int
    dims: int = 2
    fixed_size_critic: bool = False
    multiscale: bool = False


FAMILIES: dict[str, ModelFamily] = {
    "tomogan": ModelFamily(
        tomogan_generator, tomogan_discriminator, input_multiple=8, fixed_size_critic=True
    ),
    "adl": ModelFamily(
        adl_denoiser, adl_discriminator, input_multiple=INPUT_MULTIPLE_ADL, multiscale=True
    ),
    "adl3d": ModelFamily(
        functools.partial(adl_denoiser, dims=3, name="adl3d_denoiser"),
        functools.partial(adl_discriminator, dims=3, name="adl3d_discriminator"),
        input_multiple=INPUT_MULTIPLE_ADL,
        dims=3,
        multiscale=True,
    ),
    "idgan": ModelFamily(idgan_generator, idgan_discriminator, input_multiple=1),
}


def get_family(name: str) -> ModelFamily:
    """The `ModelFamily` called ``name``; `ValueError` naming the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(FAMILIES)}") from None


def build_generator(name: str = "tomogan", **kwargs) -> keras.Model:
    """Build the generator (denoiser) of the model family ``name``.

    Example:
    >>> build_generator("tomogan", depth=1).count_params()
    694897
    >>> build_generator("idgan").count_params()
    1078593
    """
    return get_family(name).generator(**kwargs)


def build_discriminator(name: str = "tomogan", patch_size: int | None = None) -> keras.Model:
    """Build the discriminator (critic) of the model family ``name``.

    ``patch_size`` is required by families whose critic is built for one input size
    (TomoGAN's ends in dense layers) and ignored by fully convolutional ones.

    Example:
    >>> build_discriminator("tomogan", patch_size=64).output_shape
    (None, 1)
    >>> [s[1:] for s in build_discriminator("adl").output_shape]
    [(None, None, 1), (None, None, 1), (None, None, 1), (None, None, 1)]
    """
    family = get_family(name)
    if not family.fixed_size_critic:
        return family.discriminator()
    if patch_size is None:
        raise ValueError(f"the {name} discriminator needs patch_size")
    return family.discriminator(patch_size=patch_size)


__all__ = [
    "FAMILIES",
    "ModelFamily",
    "build_discriminator",
    "build_generator",
    "get_family",
]
