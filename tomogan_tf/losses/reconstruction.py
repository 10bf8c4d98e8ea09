"""The generator's fidelity to the clean target, at every scale it predicts.

One weighted sum covers every family: TomoGAN and ImageDenoisingGAN weight the MSE,
ADL weights L1, its a-trous pyramid and its histogram loss. A multi-scale
generator (ADL) returns ``[full, half, quarter]``; each output is compared with the
target average-pooled to its scale and the scales are summed with equal weight, as
in ADL's trainer.
"""

from __future__ import annotations

from collections.abc import Mapping

from keras import ops

from tomogan_tf.losses.adl import histogram_loss, pyramid_loss
from tomogan_tf.losses.pixel import mean_absolute_error, mean_squared_error

RECONSTRUCTION_TERMS = {
    "mse": mean_squared_error,
    "l1": mean_absolute_error,
    "pyramid": pyramid_loss,
    "histogram": histogram_loss,
}


def as_outputs(outputs) -> list:
    """A generator's outputs as a list, finest scale first."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def downscale_targets(y_true, scales: int = 3) -> list:
    """``y_true`` average-pooled by 1, 2, 4, ... along every spatial axis (3-D too)."""
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) not in (4, 5):
        raise ValueError(f"expected images or volumes, got rank {len(y_true.shape)}")
    targets = [y_true]
    for s in range(1, scales):
        f = 2**s
        targets.append(ops.average_pool(y_true, pool_size=f, strides=f, padding="valid"))
    return targets


def reconstruction_loss(y_true, outputs, weights: Mapping[str, float]):
    """Weighted sum of the `RECONSTRUCTION_TERMS` named in ``weights``, over all scales.

    Terms with weight 0 are not computed. Returns ``(total, terms)``; ``terms`` maps
    each computed name to its unweighted sum over the scales.

    >>> import numpy as np
    >>> y = np.random.default_rng(0).random((1, 16, 16, 1)).astype("float32")
    >>> total, terms = reconstruction_loss(y, downscale_targets(y), {"l1": 1, "pyramid": 1})
    >>> float(total), sorted(terms)
    (0.0, ['l1', 'pyramid'])
    """
    unknown = set(weights) - set(RECONSTRUCTION_TERMS)
    if unknown:
        raise ValueError(f"unknown reconstruction terms {sorted(unknown)}")
    outputs = [ops.convert_to_tensor(o) for o in as_outputs(outputs)]
    targets = downscale_targets(ops.cast(y_true, outputs[0].dtype), len(outputs))
    for s, (target, pred) in enumerate(zip(targets, outputs, strict=True)):
        if None not in (*target.shape, *pred.shape) and tuple(target.shape) != tuple(pred.shape):
            raise ValueError(
                f"output {s} has shape {tuple(pred.shape)}, but the target pooled by {2**s}"
                f" has shape {tuple(target.shape)}"
            )
    total, terms = 0.0, {}
    for name, weight in weights.items():
        if weight == 0:
            continue
        loss = RECONSTRUCTION_TERMS[name]
        terms[name] = sum(loss(t, p) for t, p in zip(targets, outputs, strict=True))
        total = total + weight * terms[name]
    return total, terms


# Terms that can be scored on a subset of pixels (Noise2Self's hidden ones).
MASKABLE_TERMS = ("mse", "l1")


def masked_reconstruction_loss(y_true, y_pred, mask, weights: Mapping[str, float]):
    """Weighted MSE and L1 over the pixels where ``mask`` is 1 only (Noise2Self).

    ``y_pred`` is the full-resolution output; the rest of the image is not scored, so
    a network that sees the visible pixels gains nothing by copying them. Returns
    ``(total, terms)`` like `reconstruction_loss`.

    >>> import numpy as np
    >>> y, p = np.zeros((1, 2, 2, 1), "float32"), np.ones((1, 2, 2, 1), "float32")
    >>> mask = np.array([1, 0, 0, 0], "float32").reshape(1, 2, 2, 1)
    >>> float(masked_reconstruction_loss(y, p, mask, {"mse": 1.0})[0])
    1.0
    """
    unknown = {name for name, w in weights.items() if w} - set(MASKABLE_TERMS)
    if unknown:
        raise ValueError(
            f"terms {sorted(unknown)} compare whole images; only {MASKABLE_TERMS} can be masked"
        )
    y_pred = ops.convert_to_tensor(y_pred)
    error = ops.cast(y_true, y_pred.dtype) - y_pred
    mask = ops.cast(mask, y_pred.dtype)
    count = ops.maximum(ops.sum(mask), 1.0)
    pointwise = {"mse": ops.square, "l1": ops.abs}
    total, terms = 0.0, {}
    for name, weight in weights.items():
        if weight == 0:
            continue
        terms[name] = ops.sum(pointwise[name](error) * mask) / count
        total = total + weight * terms[name]
    return total, terms
