"""Where denoised stacks go: HDF5, TIFF, ``.npy``, a DICOM series, a Data Exchange copy.

Every sink is a context manager taking ``write(start, data)`` batches of (k, H, W)
slices in order. Outputs are written under a temporary name beside the destination
and renamed into place only when complete, so an interrupted or failed run leaves
nothing behind, and an output can never replace its own input. `open_sink` picks the
sink an output name asks for, as the denoise tool does.
"""

from __future__ import annotations

import os

import h5py
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from tomogan_tf.data.dxchange import DATA
from tomogan_tf.data.hdf5 import H5_LOCK, open_h5
from tomogan_tf.data.sources.base import ImageStack
from tomogan_tf.data.sources.dicom import (
    DICOM_SUFFIXES,
    DicomStack,
    is_dicom_input,
    one_line,
    transfer_syntax,
)
from tomogan_tf.data.sources.dxchange import DxchangeStack
from tomogan_tf.data.sources.formats import file_format
from tomogan_tf.errors import InputError
from tomogan_tf.utils.files import AtomicFileSink, atomic_path, cast_output

SERIES_SUFFIX = " (denoised, tomogan_tf)"
_PIXEL_DATA_EXTRAS = (0x7FE00001, 0x7FE00002)  # Extended Offset Table (Lengths): encapsulated

OUTPUT_DTYPES = ("float32", "float64", "float16", "uint16", "uint8", "int16", "input")


def output_dtype(name: str, input_dtype: np.dtype) -> np.dtype:
    """The dtype to write: ``name``, or the input's own with ``"input"``."""
    if name not in OUTPUT_DTYPES:
        raise InputError(None, f"unknown output dtype {name!r}; choose from {OUTPUT_DTYPES}")
    return np.dtype(input_dtype if name == "input" else name)


class SliceSink(AtomicFileSink):
    """Writes a stack slice batch by slice batch to a temporary file, then renames it.

    Use as a context manager: leaving the block normally commits the output, an
    exception removes the temporary file and leaves any existing output untouched.
    """

    def __init__(
        self,
        path: str,
        shape: tuple[int, int, int],
        dtype: np.dtype,
        key: str = "denoised",
        single_image: bool = False,
        attrs: dict | None = None,
    ):
        if not key:
            raise InputError(path, "the output dataset name (--output_key) is empty")
        super().__init__(path)
        self.shape, self.dtype, self.key = shape, np.dtype(dtype), key
        self.single_image = single_image
        self.attrs = attrs or {}
        self._handle = None
        self._target = None

    def _output_format(self, path: str) -> str:
        fmt = file_format(path)
        if fmt == "dicom":
            raise InputError(
                path, "is not a .h5, .tif or .npy name; DICOM series are written by DicomSeriesSink"
            )
        return fmt

    def _open(self) -> None:
        _, height, width = self.shape
        final_shape = (height, width) if self.single_image else self.shape
        if self.format == "hdf5":
            with H5_LOCK:
                self._handle = h5py.File(self.tmp, "w")
                # One slice per chunk, tiled for huge slices (HDF5 chunks must stay < 4 GB).
                chunks = None if self.single_image else (1, min(height, 2048), min(width, 2048))
                self._target = self._handle.create_dataset(
                    self.key, shape=final_shape, dtype=self.dtype, chunks=chunks
                )
                for name, value in self.attrs.items():
                    self._target.attrs[name] = value
        elif self.format == "npy":
            self._open_npy(final_shape)
        else:
            import tifffile

            self._handle = tifffile.TiffWriter(self.tmp, bigtiff=self._bigtiff())

    def _open_npy(self, shape: tuple[int, ...]) -> None:
        """An ``.npy`` header, then the data area at its full size (sparse, zero-filled).

        Batches go in with ``os.pwrite`` at their offset, not through a memory map, whose
        dirty pages would count in the process's memory until written back, growing with
        the stack's length.
        """
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": shape,
        }
        self._handle = open(self.tmp, "wb")  # noqa: SIM115 (closed by _close)
        try:
            np.lib.format.write_array_header_1_0(self._handle, header)
        except ValueError:  # a header over 64 KiB (never for three dimensions)
            np.lib.format.write_array_header_2_0(self._handle, header)
        self._data_offset = self._handle.tell()
        self._handle.truncate(self._data_offset + int(np.prod(shape)) * self.dtype.itemsize)
        self._handle.flush()

    def _write_npy(self, start: int, data: np.ndarray) -> None:
        offset = self._data_offset + start * int(np.prod(data.shape[1:])) * self.dtype.itemsize
        view = memoryview(np.ascontiguousarray(data)).cast("B")
        while view:  # one pwrite moves at most ~2 GiB on Linux
            written = os.pwrite(self._handle.fileno(), view, offset)
            view, offset = view[written:], offset + written

    def _bigtiff(self) -> bool:
        return int(np.prod(self.shape)) * self.dtype.itemsize > 2**31

    def write(self, start: int, data: np.ndarray) -> None:
        """Write slices ``start .. start + len(data)`` (k, H, W), in order."""
        data = cast_output(data, self.dtype)
        if self.format == "hdf5":
            with H5_LOCK:
                if self.single_image:
                    self._target[...] = data[0]
                else:
                    self._target[start : start + len(data)] = data
        elif self.format == "npy":
            self._write_npy(
                0 if self.single_image else start, data[:1] if self.single_image else data
            )
        else:
            for image in data:
                self._handle.write(image, contiguous=True, photometric="minisblack")

    def _close(self) -> None:
        if self.format == "hdf5":
            with H5_LOCK:
                self._target = None
                if self._handle is not None:
                    self._handle.close()
        elif self._handle is not None:
            self._handle.close()


def _copy_attrs(src: h5py.HLObject, dst: h5py.HLObject) -> None:
    for name, value in src.attrs.items():
        dst.attrs[name] = value


def _copy_members(src: h5py.Group, dst: h5py.Group, skip: str) -> None:
    """Copy ``src``'s attributes and members except ``skip``; soft/external links stay links."""
    _copy_attrs(src, dst)
    for name in src:
        if name == skip:
            continue
        link = src.get(name, getlink=True)
        if isinstance(link, h5py.SoftLink | h5py.ExternalLink):
            dst[name] = link
        else:
            src.copy(name, dst, name=name)


class DxchangeSink(AtomicFileSink):
    """Writes denoised projections back into a copy of the source's Data Exchange file.

    Everything but ``/exchange/data`` (groups, flats, darks, theta, attributes) is copied
    from the input; ``/exchange/data`` keeps its attributes, plus ``attrs`` if given, and
    receives ``write(start, corrected)`` batches converted back to raw units by
    ``source.correction.invert`` and cast to ``dtype`` (the raw dtype by default; integers
    are rounded and clipped). Like `SliceSink`, it writes to a temporary file next to
    ``path`` and renames it into place only when the ``with`` block ends normally.
    """

    format = "hdf5"
    key = DATA

    def __init__(
        self,
        path: str | os.PathLike,
        source: DxchangeStack,
        dtype: np.dtype | str | None = None,
        attrs: dict | None = None,
    ):
        super().__init__(os.fspath(path), input_path=source.path)
        self.source = source
        self.shape = source.shape
        self.dtype = np.dtype(source.dtype if dtype is None else dtype)
        self.single_image = source.single_image
        self.attrs = dict(attrs or {})
        self._handle: h5py.File | None = None
        self._target: h5py.Dataset | None = None

    def _open(self) -> None:
        with H5_LOCK:
            self._copy_input()

    def _copy_input(self) -> None:
        with open_h5(self.source.path) as src_file:
            self._copy_from(src_file, src_file[DATA])

    def _copy_from(self, src_file: h5py.File, src: h5py.Dataset) -> None:
        self._handle = out = h5py.File(self.tmp, "w")
        _copy_members(src_file, out, skip="exchange")
        exchange = out.create_group("exchange")
        _copy_members(src_file["exchange"], exchange, skip="data")
        _, height, width = self.shape
        options = {}
        if not self.single_image:
            # one projection per chunk, tiled for huge detectors (HDF5 chunks must be < 4 GB)
            options["chunks"] = (1, min(height, 2048), min(width, 2048))
            if src.compression in ("gzip", "lzf"):  # keep a compressed input compressed
                options.update(
                    compression=src.compression,
                    compression_opts=src.compression_opts,
                    shuffle=src.shuffle,
                )
        self._target = exchange.create_dataset("data", shape=src.shape, dtype=self.dtype, **options)
        _copy_attrs(src, self._target)
        for name, value in self.attrs.items():
            self._target.attrs[name] = value

    def write(self, start: int, data: np.ndarray) -> None:
        """Write corrected projections ``start .. start + len(data)`` (k, H, W) as raw counts."""
        raw = cast_output(self.source.correction.invert(data), self.dtype)
        with H5_LOCK:
            if self.single_image:
                self._target[...] = raw[0]
            else:
                self._target[start : start + len(raw)] = raw

    def _close(self) -> None:
        with H5_LOCK:
            self._target = None
            if self._handle is not None:
                self._handle.close()
                self._handle = None


class DicomSeriesSink:
    """Writes a denoised stack as a new DICOM series, one file per slice of ``source``.

    ``path`` is a folder (it receives ``0001.dcm``, ``0002.dcm``, ... in slice order),
    or a ``.dcm`` file for a series of one slice. Each file is a copy of the input
    file of its slice, all headers kept, except: the pixels (``write`` takes rescaled
    values, e.g. HU, and stores them with the slice's slope/intercept, rounded and
    clipped to its BitsStored range; pixels equal to PixelPaddingValue in the input
    keep it), SOP Instance UID (new per file, also in the file meta), Series Instance
    UID (one new UID for the series), SeriesDescription (+ ``SERIES_SUFFIX``),
    ImageType (value 1 DERIVED), DerivationDescription, Smallest/LargestImagePixelValue
    if present, and the transfer syntax (Explicit VR Little Endian if the input was
    compressed).

    Use as a context manager: the files are written into a temporary sibling folder
    (or file) that replaces ``path`` only when the block ends normally. An existing
    ``path`` is refused unless ``overwrite``, and then only a folder holding nothing
    but DICOM files is replaced; the input itself (or a folder holding it) never is.
    """

    format = "dicom"
    key = None
    single_image = False

    def __init__(
        self,
        path: str | os.PathLike,
        source: DicomStack,
        attrs: dict | None = None,
        overwrite: bool = False,
    ):
        raw = os.fspath(path)
        self.single_file = raw.lower().endswith(DICOM_SUFFIXES)
        self.path = raw.rstrip("/" + os.sep) or raw
        self.source = source
        self.shape = source.shape
        self.dtype = source.stored_dtype
        self.attrs = dict(attrs or {})
        self.series_uid = generate_uid()
        self.tmp: str | None = None
        n = self.shape[0]
        if self.single_file and n != 1:
            raise InputError(
                raw, f"a .dcm output holds one slice, the series has {n}: give a folder name"
            )
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise InputError(raw, f"output folder {directory} does not exist")
        self._check_not_input(raw)
        if os.path.lexists(self.path):
            self._check_replaceable(raw, overwrite)
        for s in source.slices:
            if not transfer_syntax(s.header).is_little_endian:
                raise InputError(
                    s.file, "is big-endian; DICOM output needs little-endian input files"
                )
        self._width = max(4, len(str(n)))

    def _check_not_input(self, raw: str) -> None:
        target = os.path.realpath(self.path)
        for file in {self.source.path, *self.source.files}:
            real = os.path.realpath(file)
            if real == target or real.startswith(target.rstrip(os.sep) + os.sep):
                raise InputError(raw, "is (or holds) the input; choose another output")

    def _check_replaceable(self, raw: str, overwrite: bool) -> None:
        if not overwrite:
            raise InputError(raw, "exists; pass --overwrite to replace it")
        if self.single_file:
            if os.path.isdir(self.path):
                raise InputError(raw, "is a directory; give a .dcm file name")
            return
        if not os.path.isdir(self.path):
            raise InputError(raw, "exists and is not a folder; not replacing it")
        for name in os.listdir(self.path):
            entry = os.path.join(self.path, name)
            if not os.path.isfile(entry) or not is_dicom_input(entry):
                raise InputError(
                    raw,
                    f"holds {name!r}, which is not a DICOM file; not replacing the folder"
                    " (remove it or choose another output)",
                )

    def __enter__(self) -> DicomSeriesSink:
        # A folder being replaced is moved aside and deleted once the new one is in place.
        self._atomic = atomic_path(self.path, replace_dir=True)
        self.tmp = self._atomic.__enter__()
        if not self.single_file:
            os.mkdir(self.tmp)
        return self

    def write(self, start: int, data: np.ndarray) -> None:
        """Write slices ``start .. start + len(data)`` (k, H, W) of rescaled values, in order."""
        for k, image in enumerate(data):
            self._write_slice(start + k, image)

    def _write_slice(self, index: int, image: np.ndarray) -> None:
        item = self.source.slices[index]
        try:
            ds = pydicom.dcmread(item.file)
        except Exception as err:
            raise InputError(item.file, f"cannot read it again: {one_line(err)}") from None
        stored = (image.astype(np.float64) - item.intercept) / item.slope
        low, high = item.stored_range
        stored = np.clip(np.rint(stored), low, high).astype(item.stored_dtype.newbyteorder("<"))
        if "PixelPaddingValue" in ds:  # padding (outside the scan field) stays padding
            original = self.source.read_stored(index)
            pad = int(ds.PixelPaddingValue)
            limit = int(ds.get("PixelPaddingRangeLimit", pad))
            mask = (original >= min(pad, limit)) & (original <= max(pad, limit))
            stored[mask] = original[mask]
        self._set_pixels(ds, stored)
        self._mark_derived(ds)
        name = f"{index + 1:0{self._width}d}.dcm"
        target = self.tmp if self.single_file else os.path.join(self.tmp, name)
        try:
            ds.save_as(target, enforce_file_format=True)
        except (ValueError, AttributeError, KeyError) as err:
            raise InputError(item.file, f"cannot write a DICOM copy: {one_line(err)}") from None

    @staticmethod
    def _set_pixels(ds: Dataset, stored: np.ndarray) -> None:
        data = stored.tobytes()
        ds.PixelData = data + b"\0" * (len(data) % 2)
        elem = ds["PixelData"]
        elem.VR = "OB" if stored.dtype.itemsize == 1 else "OW"
        elem.is_undefined_length = False
        for tag in _PIXEL_DATA_EXTRAS:
            if tag in ds:
                del ds[tag]
        if transfer_syntax(ds).is_compressed:
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        for keyword, value in (
            ("SmallestImagePixelValue", stored.min()),
            ("LargestImagePixelValue", stored.max()),
        ):
            if keyword in ds:
                setattr(ds, keyword, int(value))

    def _mark_derived(self, ds: Dataset) -> None:
        from tomogan_tf import __version__

        uid = generate_uid()
        ds.SOPInstanceUID = uid
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.SeriesInstanceUID = self.series_uid
        description = str(ds.get("SeriesDescription") or "").strip()
        if description:
            ds.SeriesDescription = description[: 64 - len(SERIES_SUFFIX)] + SERIES_SUFFIX
        else:
            ds.SeriesDescription = SERIES_SUFFIX.strip(" ()")
        if "ImageType" in ds:
            values = ds.ImageType
            values = [values] if isinstance(values, str) else list(values)
            if values:  # Value 1 is ORIGINAL/DERIVED (PS3.3 C.7.6.1.1.2)
                values[0] = "DERIVED"
                ds.ImageType = values
        model = self.attrs.get("model")
        text = f"Denoised by tomogan_tf {__version__}" + (f" with model {model}" if model else "")
        earlier = str(ds.get("DerivationDescription") or "").strip()
        ds.DerivationDescription = (f"{earlier}; {text}" if earlier else text)[-1024:]

    def __exit__(self, exc_type, exc, tb) -> None:
        self._atomic.__exit__(exc_type, exc, tb)


def open_sink(
    path: str,
    like: ImageStack,
    dtype: np.dtype | str,
    key: str = "denoised",
    attrs: dict | None = None,
    overwrite: bool = False,
) -> SliceSink | DicomSeriesSink:
    """The sink for output ``path`` of a stack shaped ``like`` its input (not yet entered).

    A DICOM name (a folder, ``.dcm``) gives a `DicomSeriesSink`, which needs a DICOM
    input to copy the headers from and stores the input's pixel type (``dtype`` is
    ignored); anything else a `SliceSink` of ``dtype``, dataset ``key`` for HDF5. An
    existing ``path`` is refused unless ``overwrite``.
    """
    if file_format(path) == "dicom":
        if not isinstance(like, DicomStack):
            raise InputError(
                path,
                "DICOM output (a folder or .dcm) needs a DICOM input to copy the headers"
                " from; give a .h5, .tif or .npy output file",
            )
        return DicomSeriesSink(path, like, attrs, overwrite=overwrite)
    if os.path.exists(path) and not overwrite:
        raise InputError(path, "exists; pass --overwrite to replace it")
    return SliceSink(path, like.shape, dtype, key, like.single_image, attrs)
