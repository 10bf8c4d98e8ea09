"""Finding and loading a model for inference, whatever form it comes in.

A model is named by one path (``--model``): a training run directory, a ``.keras``
generator inside one, a folder holding a ``generator.keras`` with its
``config.json`` (the shipped models), an exported SavedModel, a TF Serving base
folder of numbered versions, or nothing (the shipped default). Each gives the
same `LoadedModel`: a NumPy-in, NumPy-out ``predict`` and what driving it needs
(normalisation, depth, input multiple, dims, how it was trained). What a run
directory holds, and under which names, is `tomogan_tf.training.run_dir.RunDir`'s knowledge;
a SavedModel records its own in ``assets.extra/tomogan_tf.json`` (`METADATA_FILE`,
written by `tomogan_tf.serving`).

`locate_model` finds the model and reads how it was trained without TensorFlow, so
that the tools can check a model path and open the input in the layout it was
trained on before TensorFlow loads; `load_model` then loads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tomogan_tf.choices import INFERENCE_STRATEGIES
from tomogan_tf.data.normalization import Normalization, normalization_from_dict
from tomogan_tf.errors import InputError
from tomogan_tf.models.families import ModelFamily, get_family
from tomogan_tf.training.run_dir import RunDir
from tomogan_tf.utils.precision import FLOAT32, Precision, resolve, with_precision

if TYPE_CHECKING:
    import keras
    import tensorflow as tf

DEFAULT_MODEL = "tomogan_ct"
AS_EXPORTED_FLOAT32 = Precision(FLOAT32, "as exported")
# A model folder that is not a run (the shipped models): one generator, config beside it.
MODEL_FILE = "generator.keras"
METADATA_FILE = os.path.join("assets.extra", "tomogan_tf.json")
# What a model without a record of its training (older exports) was trained like.
TRAINED_DEFAULTS = {
    "mode": "supervised",
    "layout": "tomogan",
    "minus_log": False,
    "flat_field": None,  # dxchange: whether training divided by flat fields
    "mask": "grid",
    "mask_fill": "mean",
    "splits": None,  # n2i: K, the sub-reconstructions a slice is denoised from
    "split_key": None,  # n2i: their dataset names, {k} = 0..K-1
}


def training_record(config: dict[str, Any]) -> dict[str, Any]:
    """What a run's (flat) config says of how its model was trained, for inference.

    A Noise2Inverse model denoises reconstructed slices, whatever its training input
    was (a Data Exchange scan is reconstructed first): its inputs are named stacks.
    """
    trained = {k: config[k] for k in TRAINED_DEFAULTS if k in config}
    if trained.get("mode") == "n2i":
        trained["layout"] = "tomogan"
    else:
        trained.pop("splits", None), trained.pop("split_key", None)
    return trained


@dataclass
class LoadedModel:
    """A model ready to predict, and what the `Denoiser` needs to drive it.

    ``predict`` maps (batch, H, W, depth) float32 to (batch, H, W, 1) (3-D: (batch,
    D, H, W, 1) to the same shape), in normalised units, or in raw units when
    ``normalization`` is None (a SavedModel normalises inside its graph; ``window``
    is then the normalisation it records). ``margin`` is a tiling margin recorded at
    export, ``keepalive`` an object that must outlive ``predict``.
    """

    predict: Callable[[np.ndarray], np.ndarray]
    normalization: Normalization | None
    depth: int
    multiple: int
    name: str
    dims: int
    trained: dict[str, Any] | None
    generator: keras.Model | None = None
    window: Normalization | None = None
    margin: int | None = None
    keepalive: object = None
    precision: Precision = AS_EXPORTED_FLOAT32
    replicas: int = 1  # devices each batch is split over (`replicated`)


def shipped_models_dir() -> str:
    """``saved_models/`` of the source tree, or of the installed data files."""
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for candidate in (
        os.path.join(here, "saved_models"),
        os.path.join(sys.prefix, "share", "tomogan_tf", "saved_models"),
    ):
        if os.path.isdir(candidate):
            return candidate
    raise InputError(None, "no shipped models found; pass --model RUN_DIR|FILE.keras|SAVEDMODEL")


@dataclass(frozen=True)
class ModelFile:
    """A model found on disk: its file or folder, its kind, how it was trained.

    ``kind`` is ``"keras"`` (a ``.keras`` generator with its run's ``config.json``)
    or ``"savedmodel"``; ``trained`` is `TRAINED_DEFAULTS` overlaid with what the
    model records.
    """

    path: str
    kind: str
    trained: dict[str, Any]


def locate_model(model: str | None = None) -> ModelFile:
    """Find a run directory's, folder's, ``.keras`` or SavedModel's model (None: shipped).

    TensorFlow-free: a missing model, a ``.keras`` without its config or an unknown
    family is an `InputError` here, before anything heavy loads.
    """
    if model is None:
        model = os.path.join(shipped_models_dir(), DEFAULT_MODEL)
    if not os.path.exists(model):
        raise InputError(model, "model not found")
    if os.path.isdir(model):
        path, kind = _find_in_folder(model)
    elif model.endswith(".keras"):
        path, kind = model, "keras"
    else:
        raise InputError(model, "not a run directory, .keras file or SavedModel")
    if kind == "keras":
        config, _ = _keras_record(path)
        trained = training_record(config)
    else:
        trained = read_export_metadata(path).get("trained") or {}
    return ModelFile(path, kind, {**TRAINED_DEFAULTS, **trained})


def load_model(
    model: str | None = None, precision: str = "float32", strategy: str = "none"
) -> LoadedModel:
    """Load a run directory, ``.keras`` file or SavedModel (None: the shipped model).

    ``precision`` (`tomogan_tf.utils.precision.PRECISIONS`) is the compute precision
    of a Keras model; a SavedModel computes as it was exported. ``strategy``
    (``none``, ``mirrored``, ``auto``: mirrored with more than one GPU) spreads each
    batch of a Keras model over this machine's devices.
    """
    found = locate_model(model)
    if found.kind == "keras":
        return load_keras(found.path, precision, strategy)
    if strategy == "mirrored":
        raise InputError(
            found.path,
            "--strategy mirrored takes a run directory or .keras model; a SavedModel runs"
            " as exported, on one device",
        )
    return load_savedmodel(found.path, precision)


def _find_in_folder(folder: str) -> tuple[str, str]:
    """A SavedModel, a run directory or model folder, or a TF Serving base folder."""
    if os.path.exists(os.path.join(folder, "saved_model.pb")):
        return folder, "savedmodel"
    run = RunDir(folder)
    for path in (run.best_model, os.path.join(folder, MODEL_FILE), run.last_model):
        if os.path.exists(path):
            return path, "keras"
    versions = sorted((d for d in os.listdir(folder) if d.isdigit()), key=int, reverse=True)
    if versions:  # a TF Serving base folder: take the newest version
        return os.path.join(folder, versions[0]), "savedmodel"
    raise InputError(
        folder, f"no {os.path.basename(run.best_model)}, {MODEL_FILE} or SavedModel inside"
    )


def _keras_record(path: str) -> tuple[dict[str, Any], ModelFamily]:
    """The run config beside a ``.keras`` generator, and the family it names."""
    run = RunDir.of_model_file(path)
    if not run.exists():
        raise InputError(
            path,
            f"no {os.path.basename(run.config_path)} beside it (the run's normalisation);"
            " pass the run directory",
        )
    config = run.read_config()
    try:
        return config, get_family(config.get("model", "tomogan"))
    except ValueError as err:
        raise InputError(run.config_path, str(err)) from None


def load_keras(path: str, precision: str = "float32", strategy: str = "none") -> LoadedModel:
    """A ``.keras`` generator, with the normalisation and family its run's config records.

    The generator computes at ``precision`` (its outputs are float32 whatever it is),
    under ``strategy`` on one device or on each of this machine's (`replicated`).
    """
    import keras
    import tensorflow as tf

    import tomogan_tf.models.layers  # noqa: F401  (registers the custom layers for loading)
    from tomogan_tf.training.distribute import Role, make_strategy, resolve_strategy

    config, family = _keras_record(path)
    if strategy not in INFERENCE_STRATEGIES:
        raise InputError(None, f"--strategy must be one of {', '.join(INFERENCE_STRATEGIES)}")
    distributed = make_strategy(resolve_strategy(strategy, Role()))
    with distributed.scope() if distributed else contextlib.nullcontext():
        try:
            generator = keras.models.load_model(path, compile=False)
        except Exception as err:
            raise InputError(path, f"cannot load Keras model: {err}") from None
        if len(generator.outputs) > 1:
            # Multi-scale denoisers (ADL) list the full-resolution image first.
            generator = keras.Model(generator.input, generator.outputs[0], name=generator.name)
        if len(generator.input_shape) != family.dims + 2:
            raise InputError(
                path, f"input {generator.input_shape} does not fit a {family.dims}-D model"
            )
        chosen = resolve(precision)
        generator = with_precision(generator, chosen.policy)

    if distributed is None or distributed.num_replicas_in_sync == 1:

        @tf.function(reduce_retracing=True)
        def run_generator(x):
            return generator(x, training=False)
    else:
        run_generator = replicated(generator, distributed)

    return LoadedModel(
        predict=lambda x: run_generator(tf.constant(x, tf.float32)).numpy(),
        replicas=distributed.num_replicas_in_sync if distributed else 1,
        normalization=normalization_from_dict(config["normalization"]),
        depth=int(generator.input_shape[-1]),
        multiple=family.input_multiple,
        name=path,
        dims=family.dims,
        trained=training_record(config),
        generator=generator,
        precision=chosen,
    )


def replicated(generator: keras.Model, strategy: tf.distribute.Strategy):
    """A `tf.function` running ``generator`` on a batch split over ``strategy``'s replicas.

    Each replica takes a contiguous share of the batch (the last one padded with copies
    of the last image, dropped after); the shares' outputs are joined in order, so the
    result is the one-device result.
    """
    import tensorflow as tf

    replicas = strategy.num_replicas_in_sync

    @tf.function(reduce_retracing=True)
    def run(x):
        n = tf.shape(x)[0]
        share = (n + replicas - 1) // replicas
        padded = tf.concat([x, tf.repeat(x[-1:], share * replicas - n, axis=0)], 0)

        def on_replica(batch):
            i = tf.distribute.get_replica_context().replica_id_in_sync_group
            return generator(batch[i * share : (i + 1) * share], training=False)

        outputs = strategy.run(on_replica, args=(padded,))
        return tf.concat(strategy.experimental_local_results(outputs), 0)[:n]

    return run


def read_export_metadata(path: str) -> dict[str, Any]:
    """What `tomogan_tf.serving` recorded beside a SavedModel (empty for other exports)."""
    meta_path = os.path.join(path, METADATA_FILE)
    if not os.path.exists(meta_path):
        return {}
    with open(meta_path) as f:
        return json.load(f)


def load_savedmodel(path: str, precision: str = "auto") -> LoadedModel:
    """An exported SavedModel's ``serving_default`` signature (raw units in and out).

    Its graph computes at the precision it was exported with; asking for another
    (anything but ``auto``) is refused.
    """
    import tensorflow as tf

    meta = read_export_metadata(path)
    exported = meta.get("precision", FLOAT32)
    if precision not in ("auto", exported):
        raise InputError(
            path,
            f"this SavedModel computes in {exported} as exported; --precision {precision}"
            " needs a new export (tomogan_tf.export --precision) or the Keras model",
        )
    try:
        loaded = tf.saved_model.load(path)
        signature = loaded.signatures["serving_default"]
    except Exception as err:
        raise InputError(path, f"cannot load SavedModel: {err}") from None
    depth = int(signature.structured_input_signature[1]["noisy"].shape[-1])

    def predict(x):
        return signature(noisy=tf.constant(x, tf.float32))["denoised"].numpy()

    window = None
    if "normalization" in meta:
        window = normalization_from_dict(meta["normalization"])
    return LoadedModel(
        predict=predict,
        normalization=None,
        depth=depth,
        multiple=int(meta.get("multiple", 8)),
        name=path,
        dims=int(meta.get("dims", 2)),  # exports before 3-D support were all 2-D
        trained=meta.get("trained"),
        window=window,
        margin=meta.get("margin"),
        keepalive=loaded,
        precision=Precision(exported, "as exported"),
    )
