"""Starting a run from a trained model (``--init_from``): adapting it to the user's scan.

A model trained elsewhere (a run, a ``.keras`` file with its run's config, or the
shipped model) gives the new run its first weights, in any mode: for instance the
shipped supervised model fine-tuned by Noise2Inverse on one noisy scan. What the weights
were trained to mean travels with them: the architecture (family, depth, residual) and
the normalisation (its kind, percentiles and, for a fixed window, the window itself).
A setting left at its default follows the source; one given otherwise is refused, as
the weights could not load or would see their inputs in other units.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tomogan_tf.errors import InputError

if TYPE_CHECKING:
    import keras

    from tomogan_tf.training.config import TrainConfig

#: The settings that must match the source model's, named as their flags are.
FOLLOWED = ("model", "depth", "residual", "norm", "norm_low", "norm_high")
SHIPPED = "shipped"


@dataclass(frozen=True)
class SourceModel:
    """The ``.keras`` generator to start from and its run's flat settings."""

    path: str
    settings: dict[str, Any]


def locate_source(spec: str) -> SourceModel:
    """The model ``--init_from`` names (``shipped``: the shipped default); TensorFlow-free."""
    from tomogan_tf.inference.loaders import locate_model
    from tomogan_tf.training.run_dir import RunDir

    found = locate_model(None if spec == SHIPPED else spec)
    if found.kind != "keras":
        raise InputError(
            found.path,
            "--init_from: a SavedModel is a serving graph, not trainable weights; pass the"
            " run directory or .keras file it was exported from",
        )
    return SourceModel(found.path, RunDir.of_model_file(found.path).read_config())


def follow_source(config: TrainConfig) -> SourceModel:
    """Give ``config`` the source model's architecture and normalisation (in place).

    Raises `InputError` naming the model for a setting given unlike the model's.
    """
    from tomogan_tf.training.config import settings

    source = locate_source(config.model.init_from)
    defaults = {s.flag: s.default for s in settings()}
    conflicts = []
    for flag in FOLLOWED:
        theirs = source.settings.get(flag, defaults[flag])
        ours = config.get(flag)
        if ours == theirs:
            continue
        if ours == defaults[flag]:
            config.set(flag, theirs)
        else:
            conflicts.append(f"--{flag} {ours} (the model's is {theirs})")
    if conflicts:
        raise InputError(
            source.path,
            f"--init_from cannot change {', '.join(conflicts)}: leave them out to follow"
            " the model, or train from scratch",
        )
    if config.fitted.normalization is None:
        config.fitted = dataclasses.replace(
            config.fitted, normalization=source.settings.get("normalization")
        )
    return source


def load_initial_weights(generator: keras.Model, spec: str) -> str:
    """Copy the weights of the model ``spec`` names into ``generator``; return its path."""
    import keras

    import tomogan_tf.models.layers  # noqa: F401  (registers the custom layers for loading)

    source = locate_source(spec)
    try:
        model = keras.models.load_model(source.path, compile=False)
    except Exception as err:
        raise InputError(source.path, f"cannot load Keras model: {err}") from None
    theirs, ours = model.get_weights(), generator.get_weights()
    shapes = [w.shape for w in theirs], [w.shape for w in ours]
    if shapes[0] != shapes[1]:
        raise InputError(
            source.path,
            f"--init_from: its {len(theirs)} weight arrays do not fit the generator being"
            f" trained ({len(ours)}); it was built with other settings",
        )
    generator.set_weights(theirs)
    return os.fspath(source.path)
