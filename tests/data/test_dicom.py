"""DICOM series in and out: ordering, rescaling, a header-preserving round trip, the CLI."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import keras
import numpy as np
import pydicom
import pytest
from conftest import run_module
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    JPEGLosslessSV1,
    RLELossless,
    generate_uid,
)

from tomogan_tf.data import Normalizer
from tomogan_tf.data.sinks import SERIES_SUFFIX, DicomSeriesSink
from tomogan_tf.data.sources import file_format, is_dicom_input, open_dicom_series, open_stack
from tomogan_tf.errors import InputError

SIZE = 32
# On-disk names (any or no extension) and the slice position of each: shuffled.
NAMES = {"b.dcm": 5.0, "IM0001": -2.5, "a.DCM": 7.5, "zz": 0.0}
CHANGED = {
    "SOPInstanceUID",
    "SeriesInstanceUID",
    "SeriesDescription",
    "ImageType",
    "DerivationDescription",
}


def write_slice(
    path: Path,
    z: float,
    stored: np.ndarray,
    series_uid: str,
    instance: int,
    syntax: str = ExplicitVRLittleEndian,
) -> None:
    """One CT Image Storage file: int16 stored values, HU = stored - 1024."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.Modality = "CT"
    ds.PatientName = "Phantom^Test"
    ds.PatientID = "P1"
    ds.SeriesDescription = "abdomen"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [-16.0, -16.0, z]
    ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    ds.PixelSpacing = [1.0, 1.0]
    ds.SliceThickness = 2.5
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = 1
    ds.RescaleSlope, ds.RescaleIntercept, ds.RescaleType = 1, -1024, "HU"
    ds.PixelData = stored.astype("<i2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def stored_slice(z: float, size: int = SIZE) -> np.ndarray:
    """Stored values that identify their slice: 1000 + 10 z plus a ramp."""
    ramp = np.add.outer(np.arange(size), 2 * np.arange(size))
    return (1000 + 10 * z + ramp).astype(np.int16)


def write_series(folder: Path, names=NAMES, size: int = SIZE) -> Path:
    folder.mkdir(exist_ok=True)
    uid = generate_uid()
    # InstanceNumber runs against the positions: the positions must win.
    for k, (name, z) in enumerate(sorted(names.items(), key=lambda item: -item[1])):
        write_slice(folder / name, z, stored_slice(z, size), uid, k + 1)
    return folder


@pytest.fixture
def series(tmp_path) -> Path:
    folder = write_series(tmp_path / "ct")
    (folder / "notes.txt").write_text("not DICOM\n")
    meta = FileMetaDataset()  # a DICOMDIR: DICOM, but no image
    meta.MediaStorageSOPClassUID = "1.2.840.10008.1.3.10"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dicomdir = FileDataset(str(folder / "DICOMDIR"), {}, file_meta=meta, preamble=b"\0" * 128)
    dicomdir.FileSetID = "SET"
    dicomdir.save_as(folder / "DICOMDIR", enforce_file_format=True)
    (folder / "sub").mkdir()
    return folder


def positions() -> list[float]:
    return sorted(NAMES.values())


def test_series_reads_in_hu_ordered_along_the_normal(series):
    assert file_format(str(series)) == "dicom" and is_dicom_input(series / "zz")
    assert not is_dicom_input(series / "notes.txt")
    with open_stack(str(series)) as source:
        assert source.shape == (4, SIZE, SIZE) and source.key is None
        assert not source.single_image and source.stored_dtype == np.int16
        assert [os.path.basename(f) for f in source.files] == ["IM0001", "zz", "b.dcm", "a.DCM"]
        data = source.read([0, 1, 2, 3])
        assert data.dtype == np.float32
        for i, z in enumerate(positions()):
            np.testing.assert_array_equal(data[i], stored_slice(z) - 1024.0)
        np.testing.assert_array_equal(source.read([3, 0]), data[[3, 0]])


def test_a_single_file_is_a_series_of_one(series):
    with open_stack(str(series / "b.dcm")) as source:
        assert source.shape == (1, SIZE, SIZE)
        np.testing.assert_array_equal(source.read([0])[0], stored_slice(5.0) - 1024.0)


def test_instance_numbers_order_slices_without_positions(tmp_path):
    folder = write_series(tmp_path / "ct")
    for name in NAMES:
        ds = pydicom.dcmread(folder / name)
        del ds.ImagePositionPatient
        ds.InstanceNumber = int(NAMES[name] * 10)  # now along the positions
        ds.save_as(folder / name)
    with open_dicom_series(folder) as source:
        np.testing.assert_array_equal(source.read([0])[0], stored_slice(-2.5) - 1024.0)


def test_sink_round_trip_keeps_values_and_headers_with_new_uids(series, tmp_path):
    out = tmp_path / "den"
    with open_dicom_series(series) as source:
        with DicomSeriesSink(out, source, {"model": "run"}) as sink:
            for start in (0, 2):  # batches, in order
                sink.write(start, source.read([start, start + 1]))
            assert not out.exists()  # nothing published before the block ends
        inputs = [pydicom.dcmread(f) for f in source.files]
    files = sorted(out.iterdir())
    assert [f.name for f in files] == ["0001.dcm", "0002.dcm", "0003.dcm", "0004.dcm"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left
    outputs = [pydicom.dcmread(f) for f in files]
    series_uids = {ds.SeriesInstanceUID for ds in outputs}
    assert len(series_uids) == 1 and inputs[0].SeriesInstanceUID not in series_uids
    sops = {ds.SOPInstanceUID for ds in outputs}
    assert len(sops) == 4 and not sops & {ds.SOPInstanceUID for ds in inputs}
    for before, after in zip(inputs, outputs, strict=True):
        np.testing.assert_array_equal(after.pixel_array, before.pixel_array)
        assert after.file_meta.MediaStorageSOPInstanceUID == after.SOPInstanceUID
        assert after.SeriesDescription == "abdomen" + SERIES_SUFFIX
        assert list(after.ImageType) == ["DERIVED", "PRIMARY", "AXIAL"]
        assert "tomogan_tf" in after.DerivationDescription and "run" in after.DerivationDescription
        for elem in before:
            if elem.keyword not in CHANGED:
                assert after[elem.tag] == elem, elem.keyword
        assert {e.keyword for e in after} - {e.keyword for e in before} == {"DerivationDescription"}
    with open_dicom_series(out) as again:  # the output reads back as one series
        assert again.shape == (4, SIZE, SIZE)


def test_sink_rounds_clips_and_keeps_padding(tmp_path):
    folder = tmp_path / "ct"
    folder.mkdir()
    write_slice(folder / "x.dcm", 0.0, np.full((4, 4), 100, np.int16), generate_uid(), 1)
    ds = pydicom.dcmread(folder / "x.dcm")
    ds.BitsStored, ds.HighBit = 12, 11  # stored range -2048..2047
    ds.add_new("PixelPaddingValue", "SS", -2000)
    pixels = np.full((4, 4), 100, np.int16)
    pixels[0, 0] = -2000
    ds.PixelData = pixels.tobytes()
    ds.save_as(folder / "x.dcm")
    hu = np.array([[0, 1e6, -1e6, 10.4]] * 4, np.float32) - 1024
    with open_dicom_series(folder) as source, DicomSeriesSink(tmp_path / "o", source) as sink:
        sink.write(0, hu[None])
    stored = pydicom.dcmread(tmp_path / "o" / "0001.dcm").pixel_array
    np.testing.assert_array_equal(stored[1], [0, 2047, -2048, 10])
    assert stored[0, 0] == -2000  # padding stays padding


def test_compressed_input_is_written_uncompressed(tmp_path):
    folder = write_series(tmp_path / "ct", {"r.dcm": 0.0})
    ds = pydicom.dcmread(folder / "r.dcm")
    ds.compress(RLELossless)
    ds.save_as(folder / "r.dcm")
    with (
        open_dicom_series(folder) as source,
        DicomSeriesSink(tmp_path / "o", source) as sink,
    ):
        sink.write(0, source.read([0]))
    out = pydicom.dcmread(tmp_path / "o" / "0001.dcm")
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    np.testing.assert_array_equal(out.pixel_array, stored_slice(0.0))


def test_sink_refuses_existing_outputs_and_the_input(series, tmp_path):
    with open_dicom_series(series) as source:
        for path, problem in (
            (series, "is (or holds) the input"),
            (tmp_path, "is (or holds) the input"),
            (tmp_path / "missing" / "out", "does not exist"),
            (tmp_path / "one.dcm", "holds one slice"),
        ):
            with pytest.raises(InputError, match=re.escape(problem)):
                DicomSeriesSink(path, source, overwrite=True)
        taken = tmp_path / "taken"
        taken.mkdir()
        (taken / "keep.txt").write_text("mine")
        with pytest.raises(InputError, match="exists; pass --overwrite"):
            DicomSeriesSink(taken, source)
        with pytest.raises(InputError, match=r"'keep\.txt', which is not a DICOM file"):
            DicomSeriesSink(taken, source, overwrite=True)
        assert (taken / "keep.txt").read_text() == "mine"


def test_overwrite_replaces_a_dicom_folder_whole_and_a_dcm_takes_one_slice(series, tmp_path):
    out = tmp_path / "den"
    out.mkdir()
    for name in ("old1.dcm", "old2"):  # an earlier output, one file more than now
        (out / name).write_bytes((series / "zz").read_bytes())
    with (
        open_dicom_series(series) as source,
        DicomSeriesSink(out, source, overwrite=True) as sink,
    ):
        sink.write(0, source.read([0, 1, 2, 3]))
    assert sorted(p.name for p in out.iterdir()) == [f"000{i}.dcm" for i in range(1, 5)]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct", "den"]
    with (
        open_dicom_series(series / "b.dcm") as one,
        DicomSeriesSink(tmp_path / "one.dcm", one) as sink,
    ):
        sink.write(0, one.read([0]) + 3)
    ds = pydicom.dcmread(tmp_path / "one.dcm")
    np.testing.assert_array_equal(ds.pixel_array, stored_slice(5.0) + 3)


def test_sink_leaves_nothing_behind_on_failure(series, tmp_path):
    out = tmp_path / "den"
    with (
        open_dicom_series(series) as source,
        pytest.raises(RuntimeError),
        DicomSeriesSink(out, source) as sink,
    ):
        sink.write(0, source.read([0]))
        raise RuntimeError("model failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct"]


def one_line_error(path, problem: str) -> str:
    with pytest.raises(InputError) as info:
        open_dicom_series(path)
    message = str(info.value)
    assert "\n" not in message and problem in message, message
    return message


def test_bad_series_are_refused_in_one_line(tmp_path):
    two = write_series(tmp_path / "two")
    write_slice(two / "other", 9.0, stored_slice(9.0), generate_uid(), 9)
    assert one_line_error(two, "holds 2 DICOM series").startswith(str(two))
    assert "own folder" in one_line_error(two, "4 file(s) 'abdomen', 1 file(s)")

    mixed = write_series(tmp_path / "mixed")
    uid = pydicom.dcmread(mixed / "zz").SeriesInstanceUID
    write_slice(mixed / "small", 9.0, stored_slice(9.0, 16), uid, 9)
    assert str(mixed / "small") in one_line_error(mixed, "is 16x16 but 4 other slice(s) are 32x32")

    (tmp_path / "empty").mkdir()
    one_line_error(tmp_path / "empty", "is an empty folder")
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "a.txt").write_text("hello")
    one_line_error(tmp_path / "text", "no DICOM images among its 1 file(s)")
    one_line_error(tmp_path / "text" / "a.txt", "is not a DICOM file")
    one_line_error(tmp_path / "nowhere", "not found")


def test_multi_frame_and_undecodable_files_are_refused(tmp_path):
    multi = write_series(tmp_path / "multi", {"f.dcm": 0.0})
    ds = pydicom.dcmread(multi / "f.dcm")
    ds.NumberOfFrames = 2
    ds.PixelData = np.zeros((2, SIZE, SIZE), "<i2").tobytes()
    ds.save_as(multi / "f.dcm")
    one_line_error(multi, "is a multi-frame image (2 frames)")

    jpeg = tmp_path / "jpeg"
    jpeg.mkdir()
    write_slice(jpeg / "j.dcm", 0.0, stored_slice(0.0), generate_uid(), 1)
    ds = pydicom.dcmread(jpeg / "j.dcm")
    ds.file_meta.TransferSyntaxUID = JPEGLosslessSV1
    ds.PixelData = pydicom.encaps.encapsulate([b"\xff\xd8 not really jpeg \xff\xd9"])
    ds["PixelData"].VR, ds["PixelData"].is_undefined_length = "OB", True
    ds.save_as(jpeg / "j.dcm")
    try:
        with open_dicom_series(jpeg) as source:
            source.read([0])  # a decoder is installed here: it must fail on the bytes
    except InputError as err:
        assert "\n" not in str(err) and "j.dcm" in str(err)
        assert "cannot be decoded" in str(err) or "cannot decode" in str(err)
    else:
        pytest.fail("fake JPEG data decoded")


def write_identity_run(directory: Path) -> str:
    """A run directory whose generator is the identity (in HU, within the window)."""
    directory.mkdir()
    inputs = keras.Input((None, None, 1))
    conv = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones")
    keras.Model(inputs, conv(inputs)).save(directory / "generator_best.keras")
    normalization = Normalizer(-1500.0, 1500.0).to_dict()
    (directory / "config.json").write_text(
        json.dumps({"model": "tomogan", "normalization": normalization})
    )
    return str(directory)


def test_cli_denoises_a_folder_into_a_dicom_series(series, tmp_path):
    run = write_identity_run(tmp_path / "run")
    out = tmp_path / "den"
    args = ("--model", run, "--input", str(series), "--output", f"{out}/")
    result = run_module("tomogan_tf.denoise", *args)
    assert result.returncode == 0, result.stderr
    assert "DICOM series" in result.stdout and "int16" in result.stdout
    files = sorted(out.iterdir())
    assert len(files) == 4
    with open_dicom_series(series) as source:
        for i, f in enumerate(files):
            ds = pydicom.dcmread(f)
            np.testing.assert_array_equal(ds.pixel_array, source.read_stored(i))
            assert ds.SeriesDescription.endswith(SERIES_SUFFIX)


def test_cli_refuses_bad_dicom_inputs_in_one_line(tmp_path):
    two = write_series(tmp_path / "two")
    write_slice(two / "other", 9.0, stored_slice(9.0), generate_uid(), 9)
    run = write_identity_run(tmp_path / "run")
    npy = tmp_path / "stack.npy"
    np.save(npy, np.zeros((2, 16, 16), np.float32))
    for src, dst, problem in (
        (two, tmp_path / "out.npy", f"{two}: holds 2 DICOM series"),
        (npy, tmp_path / "out", "DICOM output (a folder or .dcm) needs a DICOM input"),
    ):
        result = run_module(
            "tomogan_tf.denoise", "--model", run, "--input", str(src), "--output", str(dst)
        )
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and problem in lines[0], result.stderr
        assert not dst.exists()
