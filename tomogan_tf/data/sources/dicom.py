"""A DICOM series (a folder of single-frame slices, or one file) as an `ImageStack`.

`open_dicom_series` reads the headers of every DICOM file in a folder (a single DICOM
file is a series of one slice), checks that they form one series of equal-sized,
single-frame, grey slices, and orders them along the slice normal. Pixel data stay on
disk until a read decodes the slices asked for, with RescaleSlope and RescaleIntercept
applied (CT comes out in HU). `tomogan_tf.data.sinks.DicomSeriesSink` writes a
denoised series back, one copy of each input file.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, MediaStorageDirectoryStorage

from tomogan_tf.data.sources.base import ImageStack
from tomogan_tf.errors import InputError

DICOM_SUFFIXES = (".dcm", ".dicom")
_PREAMBLE = 128  # bytes before the b"DICM" magic of a DICOM Part 10 file


def is_dicom_input(path: str | os.PathLike) -> bool:
    """True for a folder, or for a file that starts with the DICOM preamble (``DICM``)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        return True
    try:
        with open(path, "rb") as f:
            f.seek(_PREAMBLE)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def is_dicom_path(path: str | os.PathLike) -> bool:
    """What ``file_format`` calls DICOM: `is_dicom_input`, a ``.dcm``/``.dicom`` name,
    or a folder name (ending in ``/``, or without a suffix) that need not exist yet."""
    path = os.fspath(path)
    if path.lower().endswith(DICOM_SUFFIXES) or is_folder_name(path):
        return True
    return is_dicom_input(path)


def is_folder_name(path: str) -> bool:
    """A name that asks for a folder: it ends with a separator, or has no suffix."""
    if path.endswith(("/", os.sep)):
        return True
    return os.path.isdir(path) or not os.path.splitext(os.path.basename(path))[1]


def one_line(err: BaseException) -> str:
    lines = [line.strip().rstrip(":") for line in str(err).splitlines()]
    return "; ".join(line for line in lines if line) or repr(err)


def _stored_dtype(file: str, ds: Dataset) -> np.dtype:
    bits, signed = ds.get("BitsAllocated"), ds.get("PixelRepresentation")
    if bits not in (8, 16, 32) or signed not in (0, 1):
        raise InputError(
            file,
            f"unsupported pixel format (BitsAllocated {bits}, PixelRepresentation {signed});"
            " expected 8, 16 or 32-bit integers",
        )
    return np.dtype(f"{'i' if signed else 'u'}{bits // 8}")


def _stored_range(ds: Dataset, dtype: np.dtype) -> tuple[int, int]:
    """The stored values BitsStored allows (a 12-bit slice in 16 bits: 0..4095)."""
    bits = int(ds.get("BitsStored") or dtype.itemsize * 8)
    bits = min(max(bits, 1), dtype.itemsize * 8)
    if dtype.kind == "i":
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _float(value, default: float) -> float:
    try:
        return default if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return default


@dataclass
class DicomSlice:
    file: str
    header: Dataset  # everything before the pixel data
    slope: float
    intercept: float
    stored_dtype: np.dtype
    stored_range: tuple[int, int]


class DicomStack(ImageStack):
    """A DICOM series read as a stack.

    ``shape`` is (N, H, W) in slice order along the normal; ``dtype`` holds the
    rescaled values exactly (int16 for 12-bit CT in HU, float32 for a fractional
    slope), ``stored_dtype`` is the pixels' own (BitsAllocated, PixelRepresentation).
    ``files`` and ``headers`` are per slice, in that order.
    """

    key = None
    single_image = False

    def __init__(self, path: str, slices: list[DicomSlice]):
        self.path = path
        self._slices = tuple(slices)
        first = slices[0].header
        self.shape = (len(slices), int(first.Rows), int(first.Columns))
        self.stored_dtype = np.result_type(*(s.stored_dtype for s in slices))
        self.dtype = _value_dtype(slices)

    @property
    def slices(self) -> tuple[DicomSlice, ...]:
        """Per slice, in order: its file, header, rescale and stored pixel type."""
        return self._slices

    @property
    def files(self) -> list[str]:
        return [s.file for s in self._slices]

    @property
    def headers(self) -> list[Dataset]:
        return [s.header for s in self._slices]

    def _read_raw(self, rows: slice | list[int], region: Any) -> np.ndarray:
        """Rescaled float32 values: slope and intercept differ from slice to slice."""
        if isinstance(rows, slice):
            rows = list(range(rows.start, rows.stop))
        out = None
        for k, i in enumerate(rows):
            item = self._slices[i]
            values = self.read_stored(i)[region] * item.slope + item.intercept
            if out is None:
                out = np.empty((len(rows), *values.shape), np.float32)
            out[k] = values
        return out

    def slice_name(self, index: int) -> str:
        return f"slice {index} ({self._slices[index].file}) after rescaling"

    def read_stored(self, index: int) -> np.ndarray:
        """The stored pixel values of slice ``index`` (H, W), decoded from its file."""
        item = self._slices[index]
        try:
            stored = pydicom.pixels.pixel_array(item.file)
        except Exception as err:  # decoders raise many types (RuntimeError, ValueError, ...)
            syntax = transfer_syntax(item.header)
            raise InputError(
                item.file, f"cannot decode the pixel data ({syntax.name}): {one_line(err)}"
            ) from None
        if stored.shape != self.shape[1:]:
            raise InputError(
                item.file,
                f"pixel data of shape {stored.shape}; expected {self.shape[1]}x{self.shape[2]}",
            )
        return stored


def _value_dtype(slices: list[DicomSlice]) -> np.dtype:
    """The smallest dtype that holds every rescaled value the slices can store."""
    lows, highs = [], []
    for s in slices:
        if not (s.slope.is_integer() and s.intercept.is_integer()):
            return np.dtype(np.float32)
        ends = [v * s.slope + s.intercept for v in s.stored_range]
        lows.append(min(ends))
        highs.append(max(ends))
    low, high = min(lows), max(highs)
    for dtype in (np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.float64)


def transfer_syntax(ds: Dataset) -> UID:
    meta = getattr(ds, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    return UID(syntax or ExplicitVRLittleEndian)


def _check_decodable(file: str, syntax: UID) -> None:
    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise InputError(
            file, f"transfer syntax {syntax} ({syntax.name}) cannot be decoded by pydicom"
        ) from None
    if not decoder.is_available:
        needs = "; ".join(decoder.missing_dependencies)
        raise InputError(
            file,
            f"pixel data compressed as {syntax.name}, which cannot be decoded here (needs one"
            f" of: {needs}); install a decoder or decompress the series first",
        )


def _is_image(ds: Dataset) -> bool:
    return (
        "Rows" in ds and "Columns" in ds and ds.get("SOPClassUID") != MediaStorageDirectoryStorage
    )


def _position_key(slices: list[DicomSlice]) -> list[float] | None:
    """Each slice's position along the normal of the first slice's orientation."""
    try:
        orientation = [float(v) for v in slices[0].header.ImageOrientationPatient]
        normal = np.cross(orientation[:3], orientation[3:])
        positions = [[float(v) for v in s.header.ImagePositionPatient] for s in slices]
    except (AttributeError, TypeError, ValueError):
        return None
    if len(orientation) != 6 or not all(len(p) == 3 for p in positions) or not normal.any():
        return None
    return [float(np.dot(normal, p)) for p in positions]


def _instance_key(slices: list[DicomSlice]) -> list[float] | None:
    numbers = [_float(s.header.get("InstanceNumber"), np.nan) for s in slices]
    return None if np.isnan(numbers).any() else numbers


def _read_header(file: str, single: bool) -> Dataset | None:
    try:
        return pydicom.dcmread(file, stop_before_pixels=True)
    except InvalidDicomError:
        if single:
            raise InputError(file, "is not a DICOM file") from None
        return None
    except Exception as err:  # a truncated or corrupt file: pydicom raises many types
        raise InputError(file, f"cannot read the DICOM header: {one_line(err)}") from None


def open_dicom_series(path: str | os.PathLike) -> DicomStack:
    """Open the DICOM series in folder ``path`` (or the one-slice series of a DICOM file).

    Every regular file in the folder is tried, whatever its name; files that are not
    DICOM, and DICOM objects without an image (DICOMDIR, reports), are skipped.
    Slices are ordered by ImagePositionPatient along the normal of
    ImageOrientationPatient, else by InstanceNumber, else by file name. Raises
    `InputError` for an empty folder, several series, mixed slice sizes, multi-frame
    or colour files and pixel data that cannot be decoded here.
    """
    path = os.fspath(path)
    single = not os.path.isdir(path)
    if single:
        if not os.path.isfile(path):
            raise InputError(path, "not found (expected a folder of DICOM slices or a DICOM file)")
        candidates = [path]
    else:
        names = sorted(os.listdir(path))
        candidates = [os.path.join(path, n) for n in names]
        candidates = [f for f in candidates if os.path.isfile(f)]
        if not candidates:
            raise InputError(path, "is an empty folder (no files); expected DICOM slices")
    slices: list[DicomSlice] = []
    for file in candidates:
        ds = _read_header(file, single)
        if ds is None:
            continue
        if not _is_image(ds):
            if single:
                raise InputError(file, "holds no image (no Rows/Columns)")
            continue
        slope = _float(ds.get("RescaleSlope"), 1.0)
        if slope == 0:
            raise InputError(file, "RescaleSlope is 0")
        dtype = _stored_dtype(file, ds)
        slices.append(
            DicomSlice(
                file,
                ds,
                slope,
                _float(ds.get("RescaleIntercept"), 0.0),
                dtype,
                _stored_range(ds, dtype),
            )
        )
    if not slices:
        raise InputError(path, f"no DICOM images among its {len(candidates)} file(s)")
    _check_series(path, slices)
    key = _position_key(slices) or _instance_key(slices) or [0.0] * len(slices)
    numbers = _instance_key(slices) or [0.0] * len(slices)
    order = sorted(range(len(slices)), key=lambda i: (key[i], numbers[i], slices[i].file))
    return DicomStack(path, [slices[i] for i in order])


def _check_series(path: str, slices: list[DicomSlice]) -> None:
    series = Counter(s.header.get("SeriesInstanceUID") for s in slices)
    if len(series) > 1:
        parts = []
        for uid, count in series.most_common():
            first = next(s for s in slices if s.header.get("SeriesInstanceUID") == uid)
            number = first.header.get("SeriesNumber")
            description = first.header.get("SeriesDescription")
            parts.append(
                f"{count} file(s)"
                + (f" in series {number}" if number not in (None, "") else "")
                + (f" {str(description)!r}" if description else "")
            )
        raise InputError(
            path,
            f"holds {len(series)} DICOM series ({', '.join(parts)}); put each series in its"
            " own folder",
        )
    sizes = Counter((int(s.header.Rows), int(s.header.Columns)) for s in slices)
    (rows, cols), _ = sizes.most_common(1)[0]
    for s in slices:
        frames = int(_float(s.header.get("NumberOfFrames"), 1))
        if frames > 1:
            raise InputError(
                s.file, f"is a multi-frame image ({frames} frames); expected one slice per file"
            )
        if int(_float(s.header.get("SamplesPerPixel"), 1)) != 1:
            raise InputError(s.file, "is a colour image; expected grey slices")
        if (int(s.header.Rows), int(s.header.Columns)) != (rows, cols):
            raise InputError(
                s.file,
                f"is {s.header.Rows}x{s.header.Columns} but {sizes[(rows, cols)]} other slice(s)"
                f" are {rows}x{cols}; all slices of a series must be the same size",
            )
    for syntax in {transfer_syntax(s.header) for s in slices}:
        first = next(s for s in slices if transfer_syntax(s.header) == syntax)
        _check_decodable(first.file, syntax)
