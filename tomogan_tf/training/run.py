"""One training run, from an HDF5 file to a run directory, resumable.

`train` checks the settings, holds the run directory's lock, reads and checks the
stacks through the layout (`tomogan_tf.data.layouts`) and fits the normalisation on
a first start, all without TensorFlow; only then does it import
`tomogan_tf.training.fitting`, which builds the trainer, restores the newest
checkpoint that loads, and fits. So a command-line user learns of a bad file or
setting in about a second, before TensorFlow's start-up. What the run directory
holds, and how it survives crashes, is `tomogan_tf.training.run_dir.RunDir`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tomogan_tf.data.layouts import get_layout
from tomogan_tf.data.normalization import PerImageNormalization, fit_normalizer
from tomogan_tf.data.sources import ImageStack
from tomogan_tf.data.stacks import check_min_size
from tomogan_tf.errors import InputError
from tomogan_tf.training.config import TrainConfig
from tomogan_tf.training.distribute import (
    Role,
    check_strategy,
    cluster_role,
    scratch_directory,
)
from tomogan_tf.training.run_dir import RunDir

if TYPE_CHECKING:
    from tomogan_tf.data.pipeline import StackReader

TrainingStacks = tuple[ImageStack, ImageStack | None, ImageStack, ImageStack | None]


def _resume_config(config: TrainConfig, run: RunDir) -> TrainConfig:
    """Take the fitted state of the run being resumed; refuse changes it cannot absorb.

    A directory counts as a run once it holds a checkpoint: a first start that failed
    before training (bad flag, missing weights file) does not lock its settings in.
    """
    if not (run.exists() and run.has_checkpoint()):
        return config
    saved = run.load_config()
    changed = config.changed_frozen(saved)
    if changed:
        raise InputError(
            run.path,
            "holds a run with different settings (" + ", ".join(changed) + "); "
            "use the same settings to resume it or a new --logdir",
        )
    config.fitted = saved.fitted
    return config


def check_training_data(config: TrainConfig, workdir: str | None = None) -> TrainingStacks:
    """The checked (noisy, target, validation noisy, validation target) stacks.

    Fits the normalisation (and takes the layout's flat field) on a first start.
    ``workdir``: the run directory, where a layout keeps what it derives (Noise2Inverse's
    reconstruction of a scan). TensorFlow-free; runs (and frees every h5py object)
    before any tf.data reader thread starts.
    """
    data, model = config.data, config.model
    volumes = model.dims == 3
    noisy, target, val_noisy, val_target, fitted = get_layout(data.layout).training_stacks(
        data, workdir
    )
    if config.fitted.flat_field is None and "flat_field" in fitted:
        config.fitted.flat_field = fitted["flat_field"]
    if data.mode == "n2s" and model.depth > 1:
        for stack in (noisy, val_noisy):
            if stack.shape[0] < model.depth:
                raise InputError(
                    stack.path,
                    f"{stack.describe()} has {stack.shape[0]} slices, fewer than --depth"
                    f" {model.depth}: a slice's neighbours would include the slice itself,"
                    " which --mode n2s hides",
                )
    check_min_size(noisy, data.psz, "the patch size")
    check_min_size(val_noisy, data.psz if volumes else 8, "the smallest validation size")
    for stack in (noisy, val_noisy) if volumes else ():
        if stack.shape[0] < data.psz:
            raise InputError(
                stack.path,
                f"{stack.describe()} has {stack.shape[0]} slices; --model {model.family}"
                f" trains on cubes of --psz {data.psz} and needs at least that many",
            )
    if config.fitted.normalization is None and data.norm == "image":
        config.fitted.normalization = PerImageNormalization(data.norm_low, data.norm_high).to_dict()
    elif config.fitted.normalization is None:
        normalizer = fit_normalizer(noisy, (data.norm_low, data.norm_high))
        config.fitted.normalization = normalizer.to_dict()
    return noisy, target, val_noisy, val_target


def open_training_data(config: TrainConfig) -> tuple[StackReader, StackReader]:
    """`check_training_data`, as the training and validation readers of the pipeline."""
    from tomogan_tf.data.pipeline import StackReader

    noisy, target, val_noisy, val_target = check_training_data(config)
    return (
        StackReader(noisy, target, config.model.depth),
        StackReader(val_noisy, val_target, config.model.depth),
    )


def train(config: TrainConfig, verbose: int = 1) -> dict[str, float]:
    """Train (or resume) the run ``config.run.logdir``; return the best validation metrics.

    ``verbose`` is passed to `fit`: 1 shows a progress bar, 2 a line per validation.
    A second training on the same run directory is refused while this one holds it.
    In a multi-worker job (``TF_CONFIG``) the chief holds the run; the other workers
    train with it, write nothing into it and return no metrics.
    """
    config.validate()
    run = RunDir(config.run.logdir)
    role = cluster_role() if config.run.strategy in ("auto", "multiworker") else Role()
    check_strategy(config.run.strategy, role)
    if not role.is_chief:
        # Another worker of a multi-worker job: it reads the run the chief writes, and
        # keeps what it derives from the data (a scan's reconstruction) to itself.
        with scratch_directory() as scratch:
            return _train_checked(config, run, verbose, role, scratch)
    with run.lock():
        return _train_checked(config, run, verbose, role, run.path)


def _train_checked(
    config: TrainConfig, run: RunDir, verbose: int, role: Role, workdir: str
) -> dict[str, float]:
    config = _resume_config(config, run)
    stacks = check_training_data(config, workdir)
    from tomogan_tf.training.fitting import fit  # TensorFlow loads here, inputs checked

    return fit(config, run, stacks, verbose, role)
