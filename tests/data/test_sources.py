"""The one image-stack interface (tomogan_tf.data.sources), the sinks it feeds and the
layout registry (tomogan_tf.data.layouts)."""

from __future__ import annotations

import gc
import os
import re
import types
from concurrent.futures import ThreadPoolExecutor

import h5py
import numpy as np
import pytest

from tomogan_tf.data.layouts import LAYOUTS, get_layout
from tomogan_tf.data.sinks import DicomSeriesSink, SliceSink, open_sink
from tomogan_tf.data.sources import (
    ArrayStack,
    HDF5Stack,
    ImageStack,
    check_finite,
    open_dxchange,
    open_stack,
    scan_finite,
)
from tomogan_tf.errors import InputError
from tomogan_tf.training.config import TrainConfig

STACK = np.arange(5 * 6 * 7, dtype=np.uint16).reshape(5, 6, 7)


@pytest.fixture
def files(tmp_path):
    """The same stack as HDF5, .npy and TIFF, and one image as HDF5 and .npy."""
    import tifffile

    paths = {"h5": str(tmp_path / "s.h5"), "npy": str(tmp_path / "s.npy")}
    with h5py.File(paths["h5"], "w") as f:
        f["stack"], f["image"] = STACK, STACK[2]
        f.create_dataset("stack_gzip", data=STACK, chunks=(1, 6, 7), compression="gzip")
    np.save(paths["npy"], STACK)
    paths["tif"] = str(tmp_path / "s.tif")
    tifffile.imwrite(paths["tif"], STACK, photometric="minisblack")
    paths["image.npy"] = str(tmp_path / "i.npy")
    np.save(paths["image.npy"], STACK[2])
    return paths


def stacks(files) -> list[ImageStack]:
    return [
        open_stack(files["h5"], "stack"),
        open_stack(files["npy"]),
        open_stack(files["tif"]),
        ArrayStack(STACK),
    ]


def test_every_format_reads_the_same_slices_regions_and_ranges(files):
    region = np.s_[1:5, 2:7:2]
    for stack in stacks(files):
        with stack:
            assert (stack.shape, stack.dtype, stack.single_image) == ((5, 6, 7), STACK.dtype, False)
            out = stack.read([4, 0, 4, 1])
            assert out.dtype == np.float32
            np.testing.assert_array_equal(out, STACK[[4, 0, 4, 1]])
            np.testing.assert_array_equal(stack.read([3, 1], region), STACK[[3, 1]][:, 1:5, 2:7:2])
            np.testing.assert_array_equal(stack.read_range(1, 4, region), STACK[1:4, 1:5, 2:7:2])
            with pytest.raises(InputError, match=r"outside 0\.\.4"):
                stack.read([5])


def test_a_single_image_is_a_stack_of_one(files):
    for stack in (
        open_stack(files["h5"], "image"),
        open_stack(files["image.npy"]),
        ArrayStack(STACK[2]),
    ):
        assert stack.shape == (1, 6, 7) and stack.single_image
        np.testing.assert_array_equal(stack.read([0])[0], STACK[2])


def test_views_read_their_slices_and_name_them(files):
    stack = open_stack(files["h5"], "stack")
    view = stack.subset(2, 5)
    assert view.shape == (3, 6, 7) and view.describe() == "dataset 'stack' (slices 2-4)"
    np.testing.assert_array_equal(view.read([2, 0]), STACK[[4, 2]])
    np.testing.assert_array_equal(view.subset(1, 3).read_range(0, 2), STACK[3:5])
    with pytest.raises(InputError, match=r"outside 0\.\.2"):
        view.read([3])


def test_the_finite_check_names_the_slice_or_the_callers_place():
    data = np.zeros((4, 3, 3), np.float32)
    data[2, 1, 1] = np.inf
    stack = ArrayStack(data, "mem")
    with pytest.raises(InputError, match=re.escape("mem: NaN or Inf values in slice 2")):
        stack.read([0, 2, 3])
    with pytest.raises(InputError, match=re.escape("mem: NaN or Inf values in slice 2")):
        stack.subset(1, 4).read([0, 1])  # view slice 1, named in the stack's own numbering
    with pytest.raises(InputError, match="the stack has NaN or Inf values near slice 7"):
        check_finite(data, stack, "near slice 7")
    with pytest.raises(InputError, match="NaN or Inf values in slice 2"):
        scan_finite(stack)


@pytest.mark.parametrize("key", ["stack", "stack_gzip"])  # read directly, and through h5py
def test_hdf5_stacks_outside_with_hold_no_file_and_read_safely_from_threads(files, key):
    stack = open_stack(files["h5"], key)
    assert stack.direct is (key == "stack") and stack._file is None
    regions = [(i % 5, np.s_[i % 3 : 6, 0 : 7 - i % 4]) for i in range(200)]

    def read(args):
        index, region = args
        return np.array_equal(stack.read_range(index, index + 1, region)[0], STACK[index][region])

    with ThreadPoolExecutor(8) as pool:  # h5py deadlocks here unless every object is locked
        assert all(pool.map(read, regions))
    gc.collect()
    assert stack._file is None
    with stack:
        assert stack._file is not None
        with stack.opened():  # nested: the outer block keeps the file open
            stack.read([0])
        assert stack._file is not None
    assert stack._file is None


def test_a_stack_can_read_through_a_file_its_caller_holds(tmp_path):
    with h5py.File("mem.h5", "w", driver="core", backing_store=False) as f:
        f["x"] = STACK
        stack = open_stack(f, "x")
        np.testing.assert_array_equal(stack.read([1]), STACK[[1]])
        with stack:
            pass
        assert f.id.valid  # not closed: it is the caller's


def test_hdf5_checks_name_the_dataset(files):
    with pytest.raises(InputError, match=r"dataset 'nope' not found \(datasets in file: image"):
        open_stack(files["h5"], "nope")
    with pytest.raises(InputError, match=r"'image' has shape \(6, 7\); expected 3 dimensions"):
        HDF5Stack(files["h5"], "image", require_stack=True)


def test_open_sink_picks_the_sink_the_output_name_asks_for(files, tmp_path):
    source = open_stack(files["npy"])
    sink = open_sink(str(tmp_path / "out.h5"), source, np.float32, key="d")
    assert isinstance(sink, SliceSink) and (sink.shape, sink.key) == ((5, 6, 7), "d")
    with sink:
        sink.write(0, STACK.astype(np.float32))
    with open_stack(str(tmp_path / "out.h5"), "d") as out:
        np.testing.assert_array_equal(out.read_range(0, 5), STACK)
    with pytest.raises(InputError, match="exists; pass --overwrite"):
        open_sink(str(tmp_path / "out.h5"), source, np.float32)
    with pytest.raises(InputError, match=r"DICOM output .* needs a DICOM input"):
        open_sink(str(tmp_path / "series/"), source, np.float32)
    assert DicomSeriesSink.format == "dicom"


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
def test_npy_sink_writes_batches_at_their_offsets(tmp_path, dtype):
    path = str(tmp_path / "out.npy")
    with SliceSink(path, STACK.shape, dtype) as sink:
        sink.write(0, STACK[:2])
        sink.write(3, STACK[3:])  # slice 2 never written: zeros, as a fresh array
        assert not os.path.exists(path)  # nothing published before the block ends
    expected = STACK.astype(dtype)
    expected[2] = 0
    out = np.load(path)
    assert out.dtype == dtype and out.shape == STACK.shape
    np.testing.assert_array_equal(out, expected)
    image = str(tmp_path / "image.npy")
    with SliceSink(image, (1, 6, 7), dtype, single_image=True) as sink:
        sink.write(0, STACK[4:5])
    np.testing.assert_array_equal(np.load(image), STACK[4])


# ---------------------------------------------------------------- layouts


def settings(**overrides) -> types.SimpleNamespace:
    values = dict(
        h5="x.h5", layout="tomogan", mode="supervised", ns_key="train_ns", gt_key=None,
        val_ns_key="test_ns", val_gt_key=None, target_h5=None, minus_log=False, val_fraction=0.1,
    )  # fmt: skip
    return types.SimpleNamespace(**{**values, **overrides})


def test_the_registry_lists_the_layouts_in_order():
    assert LAYOUTS == ("tomogan", "dxchange")
    assert [get_layout(name).name for name in LAYOUTS] == list(LAYOUTS)
    with pytest.raises(InputError, match="--layout must be one of tomogan, dxchange"):
        get_layout("nexus")


@pytest.mark.parametrize(
    "overrides, keys",
    [
        ({}, {"gt_key": "train_gt", "val_gt_key": "test_gt"}),
        ({"mode": "n2n"}, {"gt_key": "train_ns2", "val_gt_key": "test_ns2"}),
        ({"mode": "n2n", "target_h5": "y.h5"}, {"gt_key": "train_ns", "val_gt_key": "test_ns"}),
        ({"mode": "n2s"}, {}),
        ({"gt_key": "mine"}, {"val_gt_key": "test_gt"}),
    ],
)
def test_default_keys_follow_the_mode(overrides, keys):
    for name in LAYOUTS:
        assert get_layout(name).default_keys(settings(**overrides)) == keys


def test_each_layout_names_what_it_cannot_do():
    named, dxchange = get_layout("tomogan"), get_layout("dxchange")
    assert named.problems(settings()) == []
    assert named.problems(settings(minus_log=True)) == [
        "--minus_log applies to --layout dxchange only"
    ]
    assert dxchange.problems(settings(mode="n2s")) == []
    problems = dxchange.problems(settings(mode="n2n", val_fraction=1.0))
    assert any("needs --target_h5" in p for p in problems)
    # --val_fraction's range is the config's check, for every layout and mode.
    bad = TrainConfig.from_settings(h5="x.h5", layout="dxchange", mode="n2s", val_fraction=1.0)
    with pytest.raises(InputError, match="--val_fraction must be between 0 and 1"):
        bad.validate()
    assert "no clean images" in dxchange.problems(settings())[0]
    assert (named.default_dtype, dxchange.default_dtype) == ("float32", "input")
    assert named.reference_key({}) == "test_gt"
    assert dxchange.reference_key({"minus_log": True}) == "reference/line_integrals"
    assert dxchange.reference_key({"minus_log": False}) == "reference/transmission"
    assert dxchange.accepts("a.h5") and not dxchange.accepts("a.tif") and named.accepts("a.tif")


def test_named_training_stacks_are_checked_and_aligned(tmp_path):
    path = str(tmp_path / "d.h5")
    with h5py.File(path, "w") as f:
        for key in ("train_ns", "train_gt", "test_ns"):
            f[key] = np.ones((4, 16, 16), np.float32)
        f["test_gt"] = np.ones((3, 16, 16), np.float32)
    named = get_layout("tomogan")
    noisy, target, _, val_target, fitted = named.training_stacks(settings(h5=path, mode="n2s"))
    assert (target, val_target, fitted) == (None, None, {}) and noisy.shape == (4, 16, 16)
    data = settings(h5=path, gt_key="train_gt", val_gt_key="test_gt")
    with pytest.raises(InputError, match="clean dataset 'test_gt' has shape"):
        named.training_stacks(data)


def test_dxchange_training_holds_out_the_last_projections(tmp_path):
    from data_tools.make_projection_dataset import make_projection_dataset

    path = str(tmp_path / "p.h5")
    make_projection_dataset(path, n_angles=20, rows=8, size=16, flats=2, darks=1)
    layout = get_layout("dxchange")
    noisy, target, val_noisy, _, fitted = layout.training_stacks(
        settings(h5=path, layout="dxchange", mode="n2s", val_fraction=0.2)
    )
    assert (noisy.shape[0], val_noisy.shape[0], target, fitted) == (
        16,
        4,
        None,
        {"flat_field": True},
    )
    assert val_noisy.describe() == "dataset 'exchange/data' (slices 16-19)"
    with open_dxchange(path) as whole:
        np.testing.assert_array_equal(val_noisy.read([0, 3]), whole.read([16, 19]))
    with h5py.File(path, "a") as f:
        del f["exchange/data_white"]
    with pytest.raises(InputError, match="has no flat fields, but the model was trained"):
        layout.open_input(path, None, {"minus_log": False, "flat_field": True})
    source = layout.open_input(path, None, {"minus_log": False, "flat_field": False})
    assert source.flat_field is False


@pytest.mark.parametrize("slices", [3, 4])
def test_a_few_grey_slices_saved_as_colour_get_the_fix_in_the_message(tmp_path, slices):
    import tifffile

    path = str(tmp_path / "few.tif")
    tifffile.imwrite(path, np.zeros((slices, 16, 16), np.float32))  # tifffile: RGB(A) planes
    with pytest.raises(InputError, match="photometric='minisblack'") as err:
        open_stack(path)
    assert str(err.value).startswith(f"{path}: has axes S")
    tifffile.imwrite(path, np.zeros((slices, 16, 16), np.float32), photometric="minisblack")
    assert open_stack(path).shape == (slices, 16, 16)
