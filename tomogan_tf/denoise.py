"""Denoise images, stacks and files of any size:
``python -m tomogan_tf.denoise --input IN --output OUT [--model M]``.

IN and OUT are HDF5 (``--input_key`` / ``--output_key``), TIFF or ``.npy``; each holds
one image (H, W) or a stack (N, H, W). M is a training run directory, a ``.keras``
generator with its run's ``config.json`` beside it, or an exported SavedModel;
without ``--model`` the shipped pretrained model is used. Large images are denoised
in blended tiles; stacks stream through a batch of slices at a time.

A 3-D model (``adl3d``) denoises a stack as one volume (N is the depth axis):
``--tile`` is then the side of the cubes it is cut into and ``--overlap`` their
context in voxels; the volume streams through in z-slabs of ``--tile`` slices, and
``--batch`` does not apply (one cube per forward pass).

A model trained on Data Exchange projections (``--layout dxchange``) reads a Data
Exchange file, flat/dark corrects it as in training, and writes a copy of it in which
only ``/exchange/data`` holds the denoised projections, in the input's dtype.
``--inference jinv`` gives a Noise2Self model's J-invariant prediction; ``--inference n2i``
applies a Noise2Inverse model by its rule to the K sub-reconstructions in IN (``split_0``
... as ``tomogan_tf.reconstruct --splits K`` writes them): each mean of K - 1 of them is
denoised and the K results averaged into OUT's N slices.

IN can also be a DICOM series: a folder of single-frame slices (one series; files of
any name, non-DICOM files skipped) or one DICOM file. Slices are ordered along the
slice normal and rescaled (CT in HU). An OUT folder (a name ending in ``/`` or without
a suffix) receives a new DICOM series, one file per slice, each a copy of its input
file with the denoised pixels stored as the input's, new SOP Instance and Series
Instance UIDs and the image marked DERIVED; a ``.dcm`` OUT takes a one-slice series.
An ``.h5``, ``.tif`` or ``.npy`` OUT receives the values (HU) as for any other input.
DICOM output needs a DICOM input, whose headers it copies.
"""

from __future__ import annotations

import os
import sys
import time

from absl import flags

from tomogan_tf import cli
from tomogan_tf.errors import InputError
from tomogan_tf.utils.files import check_output

FLAGS = flags.FLAGS


def define_flags() -> None:
    """This tool's flags; defined only when it runs (see `tomogan_tf.cli`)."""
    from tomogan_tf.choices import INFERENCE, INFERENCE_STRATEGIES
    from tomogan_tf.data.layouts import LAYOUTS
    from tomogan_tf.data.sinks import OUTPUT_DTYPES

    flags.DEFINE_string(
        "model", None, "Run directory, .keras file or SavedModel (default: shipped)."
    )
    flags.DEFINE_string(
        "input",
        None,
        "Input: .h5/.hdf5, .tif/.tiff or .npy file, or DICOM: a folder holding one series of"
        " slices, or a .dcm file.",
    )
    flags.DEFINE_string(
        "output",
        None,
        "Output: .h5, .tif or .npy file, or (from a DICOM input only) a folder (name ending in"
        " / or without a suffix) for a DICOM series, or a .dcm file for a single slice; never"
        " the input.",
    )
    flags.DEFINE_string("input_key", "test_ns", "Dataset to denoise when the input is HDF5.")
    flags.DEFINE_string("output_key", "denoised", "Dataset to write when the output is HDF5.")
    flags.DEFINE_integer(
        "tile",
        None,
        "Largest tile side in pixels; larger images are tiled. 3-D models: cube side in"
        " voxels, and slices per z-slab (default: 1024 for 2-D, 96 for 3-D models).",
    )
    flags.DEFINE_integer(
        "overlap",
        None,
        "Context pixels (voxels) per tile edge (default: the model's receptive field;"
        " for 3-D models at most 16, see MAX_MARGIN_3D).",
    )
    flags.DEFINE_integer(
        "batch", None, "Slices per forward pass (default: ~2 Mpixel per pass); 2-D models only."
    )
    flags.DEFINE_enum(
        "dtype",
        None,
        OUTPUT_DTYPES,
        "Output dtype ('input': the input's; default float32, Data Exchange: 'input').",
    )
    flags.DEFINE_enum(
        "layout",
        None,
        list(LAYOUTS),
        "HDF5 input layout: a named stack (--input_key) or Data Exchange projections, flat/dark"
        " corrected as in training and written back as a Data Exchange file with all its"
        " metadata (default: the layout the model was trained on).",
    )
    flags.DEFINE_enum(
        "inference",
        "direct",
        INFERENCE,
        "direct: one pass; jinv: Noise2Self's J-invariant prediction, each pixel predicted"
        " with itself hidden (16 passes in 2-D, 64 in 3-D); n2i: Noise2Inverse's rule for a"
        " --mode n2i model: the input's K sub-reconstructions (the model's --split_key, not"
        " --input_key) give K means of K-1 of them, each denoised, and the K results are"
        " averaged (K passes).",
    )
    cli.define_precision_flag(help_text=cli.PRECISION_HELP + " A SavedModel computes as exported.")
    flags.DEFINE_bool(
        "strict",
        False,
        "Fail (exit code 2) on an image the model's normalisation cannot map (constant, or far"
        " outside a fixed window) instead of warning and passing it through unchanged.",
    )
    flags.DEFINE_enum(
        "strategy",
        "auto",
        list(INFERENCE_STRATEGIES),
        "mirrored: split every batch of slices over this machine's GPUs (one model copy"
        " each); auto: mirrored when there is more than one GPU; none: one device. Across"
        " nodes, use --shard.",
    )
    flags.DEFINE_string(
        "shard",
        None,
        "I/N: denoise only the I-th (1..N) of N contiguous slice ranges, reading the"
        " neighbouring slices a model of --depth > 1 needs from outside it, into"
        " OUT.shard-I-of-N.h5 (HDF5 output; 2-D models); join the N files with --merge.",
    )
    flags.DEFINE_bool(
        "merge",
        False,
        "Join the shard files OUT.shard-I-of-N.h5 that --shard wrote into --output (no"
        " --input or --model needed); the result is the stack one run would have written.",
    )
    flags.DEFINE_bool(
        "virtual",
        False,
        "With --merge: make --output an HDF5 virtual dataset that reads the shard files in"
        " place (no copy; keep them beside it).",
    )
    flags.DEFINE_bool(
        "overwrite",
        False,
        "Replace an existing output file, or a DICOM output folder holding only DICOM files"
        " (never the input).",
    )


def main(argv: list[str]) -> None:
    """Denoise ``--input`` into ``--output``; print one line saying what was written."""
    # The library loads only now; TensorFlow (muted by `cli.run`) with the model.
    from tomogan_tf.data.layouts import LAYOUTS, get_layout
    from tomogan_tf.data.shards import shard_attrs
    from tomogan_tf.data.sinks import output_dtype
    from tomogan_tf.data.sources import ShardView, file_format
    from tomogan_tf.inference.loaders import locate_model

    cli.check_no_arguments(argv)
    if FLAGS.merge:
        merge(FLAGS.output)
        return
    if FLAGS.virtual:
        raise InputError(None, "--virtual applies to --merge only")
    if not FLAGS.input or not FLAGS.output:
        raise InputError(None, "--input and --output are required")
    shard = shard_of_run() if FLAGS.shard else None
    output = shard.path(FLAGS.output) if shard else FLAGS.output
    check_output(output, FLAGS.input, FLAGS.overwrite)
    if file_format(FLAGS.output) == "dicom":  # refused before the model loads
        if file_format(FLAGS.input) != "dicom":
            raise InputError(
                FLAGS.output,
                "DICOM output (a folder or .dcm) needs a DICOM input to copy the headers"
                " from; give a .h5, .tif or .npy output file",
            )
        if FLAGS.dtype not in (None, "input"):
            raise InputError(
                None, "--dtype does not apply to DICOM output (pixels are stored as the input's)"
            )
    for name, least in (("tile", 1), ("batch", 1), ("overlap", 0)):
        if FLAGS[name].value is not None and FLAGS[name].value < least:
            raise InputError(None, f"--{name} must be at least {least}")
    # The model's record and the input are checked before the model (and TensorFlow) loads.
    found = locate_model(FLAGS.model)
    layout = get_layout(FLAGS.layout or found.trained["layout"])
    if shard and layout.name != LAYOUTS[0]:
        raise InputError(
            FLAGS.input,
            "--shard splits stacks of slices; Data Exchange projections are written back"
            " as one file: denoise them in one run",
        )
    if not layout.accepts(FLAGS.input):
        if FLAGS.layout:
            raise InputError(FLAGS.input, f"--layout {layout.name} needs an HDF5 input")
        # e.g. a model trained on Data Exchange projections, given a TIFF of projections
        layout = get_layout(LAYOUTS[0])
    attrs = {"source": os.path.abspath(FLAGS.input)}
    n2i = FLAGS.inference == "n2i"
    with layout.open_input(FLAGS.input, FLAGS.input_key, found.trained, splits=n2i) as whole:
        from tomogan_tf.inference import Denoiser

        source = whole
        if shard:
            if whole.single_image:
                raise InputError(FLAGS.input, "--shard splits a stack; this is one image")
            if whole.shape[0] < shard.count:
                raise InputError(
                    FLAGS.input, f"{whole.shape[0]} slices cannot make {shard.count} shards"
                )
            source = ShardView(whole, *shard.range(whole.shape[0]))
            attrs.update(shard_attrs(shard, whole.shape[0]))

        denoiser = Denoiser.load(
            found.path,
            tile=FLAGS.tile,
            margin=FLAGS.overlap,
            batch_size=FLAGS.batch,
            inference=FLAGS.inference,
            strict=FLAGS.strict,
            precision=FLAGS.precision,
            strategy=FLAGS.strategy,
        )
        if shard and denoiser.dims == 3:
            raise InputError(
                found.path,
                "--shard is for 2-D models; a 3-D model's tiles span slice ranges:"
                " denoise the volume in one run",
            )
        print(f"{denoiser.name}: {denoiser.precision.describe()}", flush=True)
        start = time.perf_counter()
        attrs["model"] = denoiser.name
        if source.key and source.key == FLAGS.input_key:  # the dataset --input_key named
            attrs["source_key"] = source.key
        dtype = output_dtype(FLAGS.dtype or layout.default_dtype, source.dtype)
        sink = layout.open_sink(
            output, source, dtype, FLAGS.output_key, attrs, overwrite=FLAGS.overwrite
        )
        with sink:
            denoiser.denoise_file(source, sink, progress=sys.stdout.isatty())
    n, height, width = source.shape
    where = f"{output}:{sink.key}" if sink.format == "hdf5" else output
    if sink.format == "dicom":
        where = f"{output} (DICOM series)"
    what = f"{n} slice{'s' * (n > 1)} of {height}x{width}"
    if shard:
        first, last = source.start, source.start + n - 1
        what += f", shard {shard} (slices {first}..{last} of {whole.shape[0]})"
    if denoiser.dims == 3:
        what = f"a volume of {n}x{height}x{width}"
    print(
        f"denoised {what} in {time.perf_counter() - start:.1f} s -> {where} ({sink.dtype})",
        flush=True,
    )


def shard_of_run():
    """The `Shard` ``--shard`` names, refused where shards cannot be merged."""
    from tomogan_tf.data.shards import Shard
    from tomogan_tf.data.sources import file_format

    shard = Shard.parse(FLAGS.shard)
    if file_format(FLAGS.output) != "hdf5":
        raise InputError(FLAGS.output, "--shard writes HDF5 shard files: give an .h5 --output")
    if FLAGS.inference == "n2i":
        raise InputError(
            None,
            "--shard does not take --inference n2i (each slice's K held-out means span the"
            " splits); denoise the sub-reconstructions in one run",
        )
    return shard


def merge(output: str | None) -> None:
    """``--merge``: join the shard files of ``output`` and say what was written."""
    from tomogan_tf.data.shards import find_shards, merge_shards

    if not output:
        raise InputError(None, "--merge needs --output, the file the shards were named after")
    if FLAGS.input or FLAGS.shard:
        raise InputError(
            None, "--merge joins shard files: it takes --output only, not --input or --shard"
        )
    start = time.perf_counter()
    count = len(find_shards(output))
    n, height, width = merge_shards(output, FLAGS.output_key, FLAGS.virtual, FLAGS.overwrite)
    how = "virtual dataset over the shard files" if FLAGS.virtual else "copied"
    print(
        f"merged {count} shards ({n} slices of {height}x{width}, {how}) in"
        f" {time.perf_counter() - start:.1f} s -> {output}:{FLAGS.output_key}",
        flush=True,
    )


def run() -> None:
    """The ``tomogan-denoise`` console script, also ``python -m tomogan_tf.denoise``."""
    cli.run(main, prog="tomogan_tf.denoise", define_flags=define_flags, doc=__doc__)


if __name__ == "__main__":
    run()
