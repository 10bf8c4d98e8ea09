"""Model families, built by name so that every tool selects them the same way."""

from __future__ import annotations

from collections.abc import Callable

import keras

from tomogan_tf.models.tomogan import tomogan_discriminator, tomogan_generator

GENERATORS: dict[str, Callable[..., keras.Model]] = {"tomogan": tomogan_generator}
DISCRIMINATORS: dict[str, Callable[..., keras.Model]] = {"tomogan": tomogan_discriminator}
# H and W of a generator's input must be multiples of this (its total downsampling).
INPUT_MULTIPLE: dict[str, int] = {"tomogan": 8}


def _lookup(registry: dict[str, Callable[..., keras.Model]], kind: str, name: str):
    try:
        return registry[name]
    except KeyError:
        known = ", ".join(sorted(registry))
        raise ValueError(f"unknown {kind} {name!r}; known: {known}") from None


def build_generator(name: str = "tomogan", **kwargs) -> keras.Model:
    """Build the generator (denoiser) of the model family ``name``.

    Example:
    >>> build_generator("tomogan", depth=1).count_params()
    694897
    """
    return _lookup(GENERATORS, "generator", name)(**kwargs)


def build_discriminator(name: str = "tomogan", **kwargs) -> keras.Model:
    """Build the discriminator (critic) of the model family ``name``.

    Example:
    >>> build_discriminator("tomogan", patch_size=64).output_shape
    (None, 1)
    """
    return _lookup(DISCRIMINATORS, "discriminator", name)(**kwargs)


__all__ = [
    "DISCRIMINATORS",
    "GENERATORS",
    "INPUT_MULTIPLE",
    "build_discriminator",
    "build_generator",
]
