"""tomogan_tf.models (the package): model families built by name."""

from __future__ import annotations

import pytest

from tomogan_tf import build_discriminator, build_generator
from tomogan_tf.models import FAMILIES, get_family
from tomogan_tf.models.tomogan import tomogan_discriminator, tomogan_generator


def test_unknown_family_is_named_in_the_error():
    known = "unknown model family 'nope'; known: tomogan, adl, adl3d, idgan"
    with pytest.raises(ValueError, match=known):
        build_generator("nope")
    with pytest.raises(ValueError, match=known):
        build_discriminator("nope", patch_size=32)
    assert list(FAMILIES) == ["tomogan", "adl", "adl3d", "idgan"]


def test_builders_pass_their_arguments_to_the_family():
    built = build_generator("tomogan", depth=3, residual=True)
    assert get_family("tomogan").generator is tomogan_generator
    assert built.get_config() == tomogan_generator(depth=3, residual=True).get_config()
    critic = build_discriminator("tomogan", patch_size=32)
    assert critic.get_config() == tomogan_discriminator(patch_size=32).get_config()


def test_fixed_size_critic_needs_a_patch_size():
    with pytest.raises(ValueError, match="the tomogan discriminator needs patch_size"):
        build_discriminator("tomogan")
