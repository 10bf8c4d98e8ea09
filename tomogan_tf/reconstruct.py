"""Reconstruct parallel-beam slices by filtered back-projection:
``python -m tomogan_tf.reconstruct --input scan.h5 --output recon.h5``.

The input is a Data Exchange file (``/exchange/data`` projections, flat and dark fields,
angles in ``/exchange/theta``; corrected to line integrals ``-log`` as the denoiser
corrects them) or, with ``--input_key``, an HDF5 sinogram stack (slices, angles, W) of
line integrals with its angles (degrees) in ``--theta_key``. The output HDF5 holds
``recon`` (slices, W, W) float32 in 1/pixel, or 1/mm with ``--pixel_size``; with
``--splits K`` also ``split_0`` ... ``split_{K-1}``, each reconstructed from its own
interleaved K-th of the angles (Noise2Inverse's training data), and ``geometry/theta``
and ``geometry/split``. Denoise it with ``--input_key recon``.

Reconstruction is scikit-image's ``iradon`` (ramp filter), one slice at a time, streamed
``--batch`` detector rows at a time.
"""

from __future__ import annotations

import sys

from absl import flags

from tomogan_tf import cli
from tomogan_tf.errors import InputError
from tomogan_tf.utils.files import check_output

FLAGS = flags.FLAGS


def define_flags() -> None:
    """This tool's flags; defined only when it runs (see `tomogan_tf.cli`)."""
    flags.DEFINE_string("input", None, "Data Exchange file, or an HDF5 file with --input_key.")
    flags.DEFINE_string("output", None, "Output .h5 file; never the input.")
    flags.DEFINE_string(
        "input_key",
        None,
        "Sinogram stack (slices, angles, W) in the input "
        "(default: read the input as Data Exchange projections).",
    )
    flags.DEFINE_string("theta_key", "theta", "Angles (degrees) beside --input_key.")
    flags.DEFINE_float("centre", None, "Rotation axis, in detector columns (default: W // 2).")
    flags.DEFINE_float(
        "pixel_size", None, "Detector pixel size in mm: output in 1/mm (default: 1/pixel)."
    )
    flags.DEFINE_string(
        "angles",
        None,
        "Angles to use, as a Python slice of their indices, e.g. 0:1500:2 (default: all).",
    )
    flags.DEFINE_integer(
        "splits", 1, "Also reconstruct K disjoint interleaved angle subsets.", lower_bound=1
    )
    flags.DEFINE_boolean(
        "minus_log",
        True,
        "Data Exchange: take -log of the flat/dark "
        "corrected projections (--nominus_log: they already are line integrals).",
    )
    flags.DEFINE_integer(
        "batch", 8, "Detector rows read and reconstructed at a time.", lower_bound=1
    )
    flags.DEFINE_boolean("overwrite", False, "Replace an existing output file.")


def parse_angles(text: str) -> slice:
    """The slice of the angles' indices that a ``start:stop[:step]`` text names.

    >>> parse_angles("1:8:3")
    slice(1, 8, 3)
    """
    try:
        parts = [int(p) if p.strip() else None for p in text.split(":")]
        if len(parts) not in (2, 3):
            raise ValueError
    except ValueError:
        raise InputError(None, f"--angles {text!r} is not start:stop or start:stop:step") from None
    return slice(*parts)


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def main(argv: list[str]) -> None:
    from tomogan_tf.tomography import ProjectionScan, reconstruct

    cli.check_no_arguments(argv)
    if not FLAGS.input or not FLAGS.output:
        raise InputError(None, "--input and --output are required")
    check_output(FLAGS.output, FLAGS.input, FLAGS.overwrite)
    if FLAGS.pixel_size is not None and not FLAGS.pixel_size > 0:
        raise InputError(None, f"--pixel_size must be positive, got {FLAGS.pixel_size}")
    views = None if FLAGS.angles is None else parse_angles(FLAGS.angles)
    with ProjectionScan.open(FLAGS.input, FLAGS.input_key, FLAGS.theta_key, views,
                             FLAGS.centre, FLAGS.minus_log, FLAGS.splits) as scan:  # fmt: skip
        keys = reconstruct(scan, FLAGS.output, FLAGS.splits, FLAGS.pixel_size, FLAGS.batch,
                           progress=_progress)  # fmt: skip
    units = "1/mm" if FLAGS.pixel_size else "1/pixel"
    print(
        f"wrote {FLAGS.output}: {', '.join(keys)} ({scan.rows}, {scan.width}, {scan.width})"
        f" float32 [{units}] from {scan.angles} angles, centre {scan.centre:g}"
    )


def run() -> None:
    """The ``tomogan-reconstruct`` console script, also ``python -m tomogan_tf.reconstruct``."""
    cli.run(main, prog="tomogan_tf.reconstruct", define_flags=define_flags, doc=__doc__)


if __name__ == "__main__":
    run()
