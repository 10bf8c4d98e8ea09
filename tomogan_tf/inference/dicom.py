"""DICOM series in and out: a folder of single-frame slices, read and written a slice at a time.

`open_dicom_series` reads the headers of every DICOM file in a folder (a single DICOM
file is a series of one slice), checks that they form one series of equal-sized,
single-frame, grey slices, and orders them along the slice normal. Pixel data stay on
disk until `DicomSeries.read` decodes the slices asked for, with RescaleSlope and
RescaleIntercept applied (CT comes out in HU).

`DicomSeriesSink` writes the denoised slices as a new series: each file is a copy of
its input file with all headers kept, the pixels stored with the input's own
slope/intercept and pixel type, new SOP Instance and Series Instance UIDs, and the
image marked as derived. Like the other sinks, it writes into a temporary sibling
folder that is renamed into place only when complete.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import get_decoder
from pydicom.uid import UID, ExplicitVRLittleEndian, MediaStorageDirectoryStorage, generate_uid

from tomogan_tf.errors import InputError

DICOM_SUFFIXES = (".dcm", ".dicom")
SERIES_SUFFIX = " (denoised, tomogan_tf)"
_PREAMBLE = 128  # bytes before the b"DICM" magic of a DICOM Part 10 file
_PIXEL_DATA_EXTRAS = (0x7FE00001, 0x7FE00002)  # Extended Offset Table (Lengths): encapsulated


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


def _one_line(err: BaseException) -> str:
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
class _Slice:
    file: str
    header: Dataset  # everything before the pixel data
    slope: float
    intercept: float
    stored_dtype: np.dtype
    stored_range: tuple[int, int]


class DicomSeries:
    """A DICOM series read as a stack, with the interface of `SliceSource`.

    ``shape`` is (N, H, W) in slice order along the normal; ``dtype`` holds the
    rescaled values exactly (int16 for 12-bit CT in HU, float32 for a fractional
    slope), ``stored_dtype`` is the pixels' own (BitsAllocated, PixelRepresentation).
    ``files`` and ``headers`` are per slice, in that order.
    """

    key = None
    single_image = False

    def __init__(self, path: str, slices: list[_Slice]):
        self.path = path
        self._slices = slices
        first = slices[0].header
        self.shape = (len(slices), int(first.Rows), int(first.Columns))
        self.stored_dtype = np.result_type(*(s.stored_dtype for s in slices))
        self.dtype = _value_dtype(slices)

    @property
    def files(self) -> list[str]:
        return [s.file for s in self._slices]

    @property
    def headers(self) -> list[Dataset]:
        return [s.header for s in self._slices]

    def read(self, indices: list[int]) -> np.ndarray:
        """Slices ``indices`` as float32 (k, H, W), rescaled, checked for NaN/Inf."""
        out = np.empty((len(indices), *self.shape[1:]), np.float32)
        for k, i in enumerate(indices):
            out[k] = self.read_stored(i) * self._slices[i].slope + self._slices[i].intercept
        if not np.isfinite(out).all():
            bad = indices[int(np.argmax(~np.isfinite(out).reshape(len(indices), -1).all(1)))]
            raise InputError(self._slices[bad].file, "NaN or Inf values after rescaling")
        return out

    def read_stored(self, index: int) -> np.ndarray:
        """The stored pixel values of slice ``index`` (H, W), decoded from its file."""
        item = self._slices[index]
        try:
            stored = pydicom.pixels.pixel_array(item.file)
        except Exception as err:  # decoders raise many types (RuntimeError, ValueError, ...)
            syntax = _transfer_syntax(item.header)
            raise InputError(
                item.file, f"cannot decode the pixel data ({syntax.name}): {_one_line(err)}"
            ) from None
        if stored.shape != self.shape[1:]:
            raise InputError(
                item.file,
                f"pixel data of shape {stored.shape}; expected {self.shape[1]}x{self.shape[2]}",
            )
        return stored

    def close(self) -> None:
        pass

    def __enter__(self) -> DicomSeries:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _value_dtype(slices: list[_Slice]) -> np.dtype:
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


def _transfer_syntax(ds: Dataset) -> UID:
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


def _position_key(slices: list[_Slice]) -> list[float] | None:
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


def _instance_key(slices: list[_Slice]) -> list[float] | None:
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
        raise InputError(file, f"cannot read the DICOM header: {_one_line(err)}") from None


def open_dicom_series(path: str | os.PathLike) -> DicomSeries:
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
    slices: list[_Slice] = []
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
            _Slice(
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
    return DicomSeries(path, [slices[i] for i in order])


def _check_series(path: str, slices: list[_Slice]) -> None:
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
    for syntax in {_transfer_syntax(s.header) for s in slices}:
        first = next(s for s in slices if _transfer_syntax(s.header) == syntax)
        _check_decodable(first.file, syntax)


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
        source: DicomSeries,
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
        for s in source._slices:
            if not _transfer_syntax(s.header).is_little_endian:
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
        directory, base = os.path.split(os.path.abspath(self.path))
        stem, suffix = os.path.splitext(base) if self.single_file else (base, "")
        self.tmp = os.path.join(directory, f".{stem}.tmp-{os.getpid()}{suffix}")
        if not self.single_file:
            if os.path.isdir(self.tmp):  # left by a killed run that had our process id
                shutil.rmtree(self.tmp)
            os.mkdir(self.tmp)
        return self

    def write(self, start: int, data: np.ndarray) -> None:
        """Write slices ``start .. start + len(data)`` (k, H, W) of rescaled values, in order."""
        for k, image in enumerate(data):
            self._write_slice(start + k, image)

    def _write_slice(self, index: int, image: np.ndarray) -> None:
        item = self.source._slices[index]
        try:
            ds = pydicom.dcmread(item.file)
        except Exception as err:
            raise InputError(item.file, f"cannot read it again: {_one_line(err)}") from None
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
            raise InputError(item.file, f"cannot write a DICOM copy: {_one_line(err)}") from None

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
        if _transfer_syntax(ds).is_compressed:
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
        if exc_type is not None:
            self._discard()
            return
        try:
            self._commit()
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        if self.tmp is None:
            return
        if os.path.isdir(self.tmp):
            shutil.rmtree(self.tmp, ignore_errors=True)
        elif os.path.exists(self.tmp):
            os.remove(self.tmp)

    def _commit(self) -> None:
        if self.single_file or not os.path.lexists(self.path):
            os.replace(self.tmp, self.path)
            return
        old = f"{self.tmp}.old"  # move the folder being replaced aside, then swap
        os.rename(self.path, old)
        try:
            os.rename(self.tmp, self.path)
        except BaseException:
            os.rename(old, self.path)
            raise
        shutil.rmtree(old, ignore_errors=True)
