"""SavedModel export for TF Serving, with normalisation and padding inside the graph.

The exported ``serving_default`` signature takes ``noisy``: float32
[batch, H, W, depth] in the data's own units, any batch, H and W, and returns
``denoised``: [batch, H, W, 1] in the same units. A 3-D model (``adl3d``) takes and
returns volumes, [batch, D, H, W, 1]. The directory layout is the one TF Serving
expects, ``BASE/NAME/VERSION/``; ``assets.extra/tomogan_tf.json`` records what a
client needs to know (dims, depth, input multiple, normalisation, tiling margin).

Example:
>>> export_savedmodel("runs/demo", "serving/tomogan", version=1)  # doctest: +SKIP
'serving/tomogan/1'
"""

from __future__ import annotations

import json
import os
import shutil

import keras
import tensorflow as tf

from tomogan_tf.data.normalization import Normalizer
from tomogan_tf.errors import InputError
from tomogan_tf.inference.denoiser import METADATA_FILE, Denoiser
from tomogan_tf.models.padding import pad_to_multiple_nd


def serving_function(generator: keras.Model, normalizer: Normalizer, multiple: int):
    """The tf.function behind ``serving_default``: normalise, pad, denoise, crop, invert.

    Works for 2-D (batch, H, W, depth) and 3-D (batch, D, H, W, 1) generators alike,
    padding every spatial axis, so clients may send any size.
    """
    spatial = len(generator.input_shape) - 2
    channels = int(generator.input_shape[-1])
    spec = tf.TensorSpec([None] * (spatial + 1) + [channels], tf.float32, "noisy")

    @tf.function(input_signature=[spec])
    def serve(noisy):
        x = normalizer.apply(tf.cast(noisy, tf.float32))
        padded, sizes = pad_to_multiple_nd(x, multiple, range(1, spatial + 1))
        y = generator(padded, training=False)
        y = y[(slice(None), *(slice(0, size) for size in sizes))]
        return {"denoised": normalizer.invert(tf.cast(y, tf.float32))}

    return serve


def next_version(base: str) -> int:
    """One more than the highest integer version folder in ``base`` (1 when none)."""
    if not os.path.isdir(base):
        return 1
    versions = [int(d) for d in os.listdir(base) if d.isdigit()]
    return max(versions, default=0) + 1


def export_savedmodel(model: str | None, base: str, version: int | None = None) -> str:
    """Export a run directory or ``.keras`` generator (None: shipped model) to ``base/version``.

    Written to a temporary folder and renamed into place; an existing version is
    never overwritten.
    """
    denoiser = Denoiser.load(model)
    generator = denoiser.generator
    if generator is None:
        raise InputError(model, "is already a SavedModel; serve it as it is")
    version = next_version(base) if version is None else version
    if version < 1:
        raise InputError(None, f"--version must be a positive integer, got {version}")
    target = os.path.join(base, str(version))
    if os.path.exists(target):
        raise InputError(target, "already exists; choose another --version")
    os.makedirs(base, exist_ok=True)
    tmp = os.path.join(base, f".tmp-{version}-{os.getpid()}")
    try:
        archive = keras.export.ExportArchive()
        archive.track(generator)
        archive.add_endpoint(
            "serving_default",
            serving_function(generator, denoiser.normalizer, denoiser.multiple),
        )
        archive.write_out(tmp, verbose=False)
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(
                {
                    "dims": denoiser.dims,
                    "depth": int(generator.input_shape[-1]),
                    "multiple": denoiser.multiple,
                    "margin": denoiser.margin,
                    "normalization": denoiser.normalizer.to_dict(),
                    "trained": denoiser.trained,
                    "source": denoiser.name,
                },
                f,
                indent=2,
            )
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
