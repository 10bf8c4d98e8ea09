"""Checks of the stacks a training run reads, before any tf.data thread starts.

They take any `ImageStack` (`tomogan_tf.data.sources`) and raise `InputError` naming
the file and the stack as `ImageStack.describe` does, so a misaligned pair or a too
small image fails in one line.
"""

from __future__ import annotations

from tomogan_tf.data.sources import ImageStack
from tomogan_tf.errors import InputError


def check_aligned(noisy: ImageStack, target: ImageStack, what: str = "target") -> None:
    """Raise unless ``target`` matches ``noisy`` slice for slice (same N, H, W)."""
    if noisy.shape != target.shape:
        where = "" if noisy.path == target.path else f" in {target.path}"
        raise InputError(
            noisy.path,
            f"{noisy.describe()} has shape {noisy.shape} but the {what} {target.describe()}"
            f"{where} has shape {target.shape}; they must match slice for slice",
        )


def check_min_size(stack: ImageStack, min_size: int, what: str = "the patch size") -> None:
    """Raise if the images of ``stack`` are smaller than ``min_size`` on a side."""
    height, width = stack.shape[1:]
    if min(height, width) < min_size:
        raise InputError(
            stack.path,
            f"images in {stack.describe()} are {height}x{width}, smaller than {what} {min_size}",
        )
