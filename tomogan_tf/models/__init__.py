"""Model families, built by name so that every tool selects them the same way.

`tomogan_tf.models.families` says what each family is (its table is there) without
importing TensorFlow; the builders here import the model's module (and Keras) when
they are called, so importing this package stays TensorFlow-free.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tomogan_tf.models.families import FAMILIES, ModelFamily, get_family

if TYPE_CHECKING:
    import keras


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
