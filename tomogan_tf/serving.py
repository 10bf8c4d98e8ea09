"""SavedModel export for TF Serving, with normalisation and padding inside the graph.

The exported ``serving_default`` signature takes ``noisy``: float32
[batch, H, W, depth] in the data's own units, any batch, H and W, and returns
``denoised``: [batch, H, W, 1] in the same units (each image normalised by its own
percentiles inside the graph); ``denoise_in_window`` also takes each image's window,
for clients that tile large images themselves. A 3-D model (``adl3d``) takes and
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

import keras
import numpy as np
import tensorflow as tf

from tomogan_tf.data.normalization import Normalization, Normalizer, windows_tf
from tomogan_tf.errors import InputError
from tomogan_tf.inference.denoiser import Denoiser
from tomogan_tf.inference.loaders import METADATA_FILE
from tomogan_tf.models.padding import pad_to_multiple_nd
from tomogan_tf.utils.files import atomic_path


def serving_functions(generator: keras.Model, normalization: Normalization, multiple: int):
    """The tf.functions behind the two signatures: normalise, pad, denoise, crop, invert.

    ``serving_default`` (``noisy``) maps each (H, W) image (the centre channel; every
    slice of a volume) by its own window, exactly as `Denoiser` does (`windows_tf`), so
    clients send raw data in any units; an image whose window is degenerate (constant)
    comes back unchanged. ``denoise_in_window`` (``noisy``, ``window``: the raw
    ``[low, high]`` of each image, [batch, 2], or [batch, D, 2] for volumes) takes the
    window from the client: one that tiles a large image itself computes the window of
    the whole image once (the percentiles in ``tomogan_tf.json``) and sends it with
    every tile, so all tiles are mapped alike. Works for 2-D (batch, H, W, depth) and 3-D
    (batch, D, H, W, 1) generators, padding every spatial axis, so any size goes.
    """
    spatial = len(generator.input_shape) - 2
    channels = int(generator.input_shape[-1])
    spec = tf.TensorSpec([None] * (spatial + 1) + [channels], tf.float32, "noisy")
    window_spec = tf.TensorSpec([None] * (spatial - 1) + [2], tf.float32, "window")
    margin = normalization.margin

    def denoise(raw, low, high, ok):
        """``low``, ``high``, ``ok``: one per image, shaped to broadcast over (H, W, C)."""
        low, scale = tf.cast(low, tf.float32), tf.cast(tf.where(ok, high - low, 1.0), tf.float32)
        x = tf.clip_by_value((raw - low) / scale, -margin, 1.0 + margin)
        padded, sizes = pad_to_multiple_nd(x, multiple, range(1, spatial + 1))
        y = generator(padded, training=False)
        y = tf.cast(y[(slice(None), *(slice(0, size) for size in sizes))], tf.float32)
        centre = raw[..., channels // 2 : channels // 2 + 1]
        return {"denoised": tf.where(ok, y * scale + low, centre)}

    def per_image(raw):
        return tf.concat([tf.shape(raw)[:-3], [1, 1, 1]], 0)

    @tf.function(input_signature=[spec])
    def serve(noisy):
        raw = tf.cast(noisy, tf.float32)
        centre = raw[..., channels // 2]
        images = tf.reshape(centre, tf.concat([[-1], tf.shape(raw)[-3:-1]], 0))
        low, high, ok = windows_tf(normalization, images)
        return denoise(raw, *(tf.reshape(t, per_image(raw)) for t in (low, high, ok)))

    @tf.function(input_signature=[spec, window_spec])
    def serve_in_window(noisy, window):
        raw = tf.cast(noisy, tf.float32)
        window = tf.cast(window, tf.float64)
        low, high = (tf.reshape(window[..., k], per_image(raw)) for k in (0, 1))
        return denoise(raw, low, high, high > low)

    return serve, serve_in_window


def next_version(base: str) -> int:
    """One more than the highest integer version folder in ``base`` (1 when none)."""
    if not os.path.isdir(base):
        return 1
    versions = [int(d) for d in os.listdir(base) if d.isdigit()]
    return max(versions, default=0) + 1


def export_savedmodel(
    model: str | None,
    base: str,
    version: int | None = None,
    precision: str = "float32",
    warmup: bool = True,
) -> str:
    """Export a run directory or ``.keras`` generator (None: shipped model) to ``base/version``.

    The graph computes at ``precision`` (default float32: the serving machine may lack
    the 16-bit units of this one; ``auto`` chooses for this machine), recorded in the
    export's metadata; inputs and outputs are float32 either way.

    With ``warmup``, ``assets.extra/tf_serving_warmup_requests`` holds requests TF
    Serving replays when it loads the version (`write_warmup_requests`).

    Written under a temporary name beside the version folder and renamed into place
    when complete (`atomic_path`), so TF Serving, which polls ``base``, never sees a
    half-written version; an existing version is never overwritten.
    """
    denoiser = Denoiser.load(model, precision=precision)
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
    serve, serve_in_window = serving_functions(generator, denoiser.normalization, denoiser.multiple)
    depth = int(generator.input_shape[-1])
    with atomic_path(target) as tmp:
        archive = keras.export.ExportArchive()
        archive.track(generator)
        archive.add_endpoint("serving_default", serve)
        archive.add_endpoint("denoise_in_window", serve_in_window)
        archive.write_out(tmp, verbose=False)
        os.makedirs(os.path.join(tmp, "assets.extra"), exist_ok=True)
        with open(os.path.join(tmp, METADATA_FILE), "w") as f:
            json.dump(
                {
                    "dims": denoiser.dims,
                    "depth": depth,
                    "multiple": denoiser.multiple,
                    "margin": denoiser.margin,
                    "normalization": denoiser.normalization.to_dict(),
                    "trained": denoiser.trained,
                    "source": denoiser.name,
                    "precision": denoiser.precision.policy,
                },
                f,
                indent=2,
            )
        if warmup:
            name = os.path.basename(os.path.normpath(base))
            write_warmup_requests(tmp, name, denoiser.dims, depth, denoiser.normalization)
        if os.path.exists(target):  # another export took this version meanwhile
            raise InputError(target, "already exists; choose another --version")
    return target


# The requests TF Serving replays at load: (signature, input shape without channels).
# 2-D: a tile, a slice and a small batch (the first call at each size builds its
# kernels), and the windowed signature; 3-D: one cube through each signature.
WARMUP_2D = (((1, 256, 256), "serving_default"), ((1, 512, 512), "serving_default"),
             ((4, 256, 256), "serving_default"), ((1, 512, 512), "denoise_in_window"))  # fmt: skip
WARMUP_3D = (((1, 32, 64, 64), "serving_default"), ((1, 32, 64, 64), "denoise_in_window"))
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


def warmup_inputs(
    shape: tuple[int, ...], depth: int, window: tuple[float, float] = (0.0, 1000.0), seed: int = 0
) -> np.ndarray:
    """A representative input: a noisy disc on a background, spanning ``window``."""
    rng = np.random.default_rng(seed)
    grid = np.meshgrid(*(np.linspace(-1, 1, n) for n in shape[1:]), indexing="ij")
    body = (sum(g**2 for g in grid) < 0.7).astype(np.float32)
    low, high = window
    image = low + (high - low) * (0.1 + 0.8 * body + 0.03 * rng.standard_normal(body.shape))
    image = np.broadcast_to(image, shape)
    return np.repeat(image[..., None], depth, axis=-1).astype(np.float32)


def write_warmup_requests(
    export_dir: str,
    model_name: str,
    dims: int,
    depth: int,
    normalization: Normalization | None = None,
) -> str:
    """Write TF Serving's warm-up file into ``export_dir`` and return its path.

    A TFRecord of `PredictionLog` records (the ``tensorflow-serving-api`` protos), one
    `PredictRequest` per shape of `WARMUP_2D` (or `WARMUP_3D`), so a freshly loaded
    version has run every signature at typical sizes before its first real request.
    The images span a fixed ``normalization``'s window (the units the model takes),
    or 0..1000 for per-image normalisation, which maps any units.
    """
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    fixed = isinstance(normalization, Normalizer)
    window = (normalization.low, normalization.high) if fixed else (0.0, 1000.0)
    path = os.path.join(export_dir, WARMUP_FILE)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for k, (shape, signature) in enumerate(WARMUP_3D if dims == 3 else WARMUP_2D):
            noisy = warmup_inputs(shape, depth, window, seed=k)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            request.inputs["noisy"].CopyFrom(tf.make_tensor_proto(noisy))
            if signature == "denoise_in_window":
                limits = np.tile(np.float32(window), (*shape[: dims - 1], 1))
                request.inputs["window"].CopyFrom(tf.make_tensor_proto(limits))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
            writer.write(log.SerializeToString())
    return path


def read_warmup_requests(export_dir: str) -> list:
    """The `PredictRequest` records of an export's warm-up file, in order."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = os.path.join(export_dir, WARMUP_FILE)
    requests = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        requests.append(log.predict_log.request)
    return requests
