"""Parallel-beam tomography: sinograms from files, filtered back-projection, angle splits.

No TensorFlow here: reconstruction is NumPy and scikit-image (`fbp`), so the
``reconstruct`` tool starts in about a second.
"""

from tomogan_tf.tomography.fbp import angle_splits, centre_shift, fbp
from tomogan_tf.tomography.reconstruct import FULL, reconstruct, split_key
from tomogan_tf.tomography.scan import ProjectionScan

__all__ = [
    "FULL",
    "ProjectionScan",
    "angle_splits",
    "centre_shift",
    "fbp",
    "reconstruct",
    "split_key",
]
