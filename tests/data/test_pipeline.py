"""HDF5 checks, normalisation and the tf.data patch pipeline."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from tomogan_tf.data import (
    Normalizer,
    StackReader,
    check_aligned,
    check_min_size,
    cube_dataset,
    fit_normalizer,
    neighbour_indices,
    open_h5,
    open_stack,
    patch_dataset,
    scan_finite,
    slice_dataset,
)
from tomogan_tf.data.sources import base as sources_base
from tomogan_tf.data.sources import open_hdf5
from tomogan_tf.data.sources.hdf5_direct import DirectReader
from tomogan_tf.errors import InputError

IDENTITY = Normalizer(0.0, 1.0, margin=1e6)


def write(path, **datasets):
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f[key] = value
    return str(path)


@pytest.fixture
def index_file(tmp_path):
    """Noisy slice i holds i + y/1000 + x/1e6 at (y, x); clean is noisy + 0.5: easy to trace."""
    n, h, w = 7, 40, 36
    yy, xx = np.mgrid[0:h, 0:w]
    noisy = np.stack([i + yy / 1e3 + xx / 1e6 for i in range(n)]).astype(np.float64)
    return write(tmp_path / "idx.h5", ns=noisy, gt=noisy + 0.5), (n, h, w)


def test_neighbours_mirror_about_the_centre_at_both_ends():
    assert neighbour_indices(0, 10, 5) == [2, 1, 0, 1, 2]
    assert neighbour_indices(1, 10, 5) == [3, 0, 1, 2, 3]
    assert neighbour_indices(8, 10, 5) == [6, 7, 8, 9, 6]
    assert neighbour_indices(9, 10, 3) == [8, 9, 8]
    assert neighbour_indices(4, 10, 3) == [3, 4, 5]
    # With at least depth slices, no neighbour is the centre slice itself.
    for n in range(7, 12):
        for i in range(n):
            neighbours = neighbour_indices(i, n, 7)
            assert neighbours[3] == i and i not in neighbours[:3] + neighbours[4:]
    # Shorter stacks repeat what they have.
    assert neighbour_indices(0, 1, 3) == [0, 0, 0]
    assert neighbour_indices(0, 2, 5) == [0, 1, 0, 1, 0]


def test_reader_stacks_neighbours_with_centre_slice_target(index_file):
    path, _ = index_file
    noisy, clean = StackReader.open(path, "ns", "gt", depth=3).read(0, 5, 7, 8, 6)
    assert noisy.shape == (8, 6, 3) and clean.shape == (8, 6, 1)
    np.testing.assert_allclose(np.floor(noisy[0, 0]), [1, 0, 1])
    np.testing.assert_allclose(clean[..., 0], noisy[..., 1] + 0.5, atol=1e-6)
    np.testing.assert_allclose(noisy[0, 0, 1], 0 + 5 / 1e3 + 7 / 1e6, atol=1e-6)


def test_patch_dataset_shapes_and_centre_target(index_file):
    path, shape = index_file
    reader = StackReader.open(path, "ns", "gt", depth=3)
    ds = patch_dataset(reader, 16, 4, IDENTITY, seed=3, group=3, augment=False)
    noisy, clean = next(iter(ds))
    assert noisy.shape == (3, 4, 16, 16, 3) and clean.shape == (3, 4, 16, 16, 1)
    noisy, clean = noisy.numpy(), clean.numpy()
    np.testing.assert_allclose(clean[..., 0], noisy[..., 1] + 0.5, atol=1e-5)
    # The neighbours are the slices either side of the target, reflected at the ends.
    centre = np.floor(noisy[..., 1])
    below = np.where(centre == 0, 1, centre - 1)
    above = np.where(centre == shape[0] - 1, shape[0] - 2, centre + 1)
    np.testing.assert_array_equal(np.floor(noisy[..., 0]), below)
    np.testing.assert_array_equal(np.floor(noisy[..., 2]), above)


def test_augmentation_keeps_pairs_aligned_and_uses_all_eight_transforms(index_file):
    path, _shape = index_file
    reader = StackReader.open(path, "ns", "gt", depth=1)
    ds = patch_dataset(reader, 16, 8, IDENTITY, seed=1, augment=True)
    orientations = set()
    for noisy, clean in ds.take(8):
        noisy, clean = noisy.numpy()[0], clean.numpy()[0]
        np.testing.assert_allclose(clean, noisy + 0.5, atol=1e-5)
        for patch in noisy[..., 0]:
            frac = patch - np.floor(patch)
            # Sign of the y and x ramps along rows and columns identifies the transform.
            dy_rows, dx_rows = np.sign(frac[1, 0] - frac[0, 0]), np.sign(frac[0, 1] - frac[0, 0])
            orientations.add((dy_rows, dx_rows, abs(frac[1, 0] - frac[0, 0]) > 5e-4))
    assert len(orientations) == 8


def test_stream_is_a_function_of_seed_and_position(index_file):
    path, _shape = index_file
    reader = StackReader.open(path, "ns", "gt", depth=1)
    first = [n.numpy() for n, _ in patch_dataset(reader, 16, 2, IDENTITY, seed=5).take(3)]
    resumed = next(iter(patch_dataset(reader, 16, 2, IDENTITY, seed=5, start=4)))[0]
    np.testing.assert_array_equal(resumed.numpy(), first[2])
    other = next(iter(patch_dataset(reader, 16, 2, IDENTITY, seed=6)))[0].numpy()
    assert not np.array_equal(other, first[0])


def test_pipeline_reads_only_patch_sized_hyperslabs(index_file, monkeypatch):
    path, shape = index_file
    largest = []

    def spy_on(owner, name):
        original = getattr(owner, name)

        def spy(self, *args):
            out = original(self, *args)
            largest.append(np.size(out))
            return out

        monkeypatch.setattr(owner, name, spy)

    # Unfiltered datasets are read by DirectReader, anything else by h5py.
    spy_on(h5py.Dataset, "__getitem__")
    spy_on(DirectReader, "read")
    reader = StackReader.open(path, "ns", "gt", depth=3)
    for _ in patch_dataset(reader, 16, 4, IDENTITY, group=2).take(3):
        pass
    # Every read is one patch of depth slices (or one slice of it), never a whole image.
    assert largest and max(largest) <= 3 * 16 * 16 < shape[1] * shape[2]


def test_slice_dataset_yields_whole_slices_in_order(index_file):
    path, _shape = index_file
    reader = StackReader.open(path, "ns", "gt", depth=1)
    batches = list(slice_dataset(reader, [6, 2, 4], IDENTITY, batch_size=2))
    noisy = np.concatenate([n.numpy() for n, _ in batches])
    assert noisy.shape == (3, 40, 36, 1)
    np.testing.assert_array_equal(np.floor(noisy[:, 0, 0, 0]), [6, 2, 4])


def test_training_and_validation_streams_run_without_the_autotuner(index_file):
    # With tf.data's autotuner on, TF 2.21 destroys an iterator only when its tuning
    # thread next wakes, so each fit and validation pass ended on a 10 x (2^n - 1) ms
    # mark (bench/bench_autotune_wait.py); `loaded` switches it off for every stream.
    path, _shape = index_file
    reader = StackReader.open(path, "ns", "gt", depth=1)
    streams = [
        patch_dataset(reader, 8, 2, IDENTITY),
        slice_dataset(reader, [1, 2], IDENTITY),
        cube_dataset(reader, 2, 4, IDENTITY),
    ]
    for stream in streams:
        assert stream.options().autotune.enabled is False
        assert len(next(iter(stream))) == 2  # and it still yields (noisy, target)


def test_normalizer_maps_percentiles_to_unit_range_and_inverts():
    rng = np.random.default_rng(0)
    raw = rng.integers(1000, 3000, size=(4, 64, 64)).astype(np.uint16)
    raw[0, 0, 0] = 65535  # a hot pixel
    with h5py.File("mem.h5", "w", driver="core", backing_store=False) as f:
        f["x"] = raw
        norm = fit_normalizer(open_stack(f, "x"), (1, 99))
    assert 1000 <= norm.low < 1100 and 2900 < norm.high <= 3000
    mapped = norm.apply(raw.astype(np.float32))
    assert mapped.dtype == np.float32
    assert mapped.max() == pytest.approx(1 + norm.margin)  # the hot pixel is clipped
    middle = np.float32(2000.0)
    assert float(norm.invert(norm.apply(middle))) == pytest.approx(2000.0, rel=1e-5)
    assert Normalizer.from_dict(norm.to_dict()) == norm


def test_constant_data_cannot_be_normalised(tmp_path):
    path = write(tmp_path / "c.h5", x=np.ones((2, 16, 16), np.float32))
    with open_h5(path) as f, pytest.raises(InputError, match="constant"):
        fit_normalizer(open_stack(f, "x"))


def checked_pair(path: str, min_size: int = 1) -> None:
    """What training checks of a noisy/clean pair before it starts."""
    noisy, clean = (open_hdf5(path, key, require_stack=True) for key in ("ns", "gt"))
    check_aligned(noisy, clean, "clean")
    check_min_size(noisy, min_size)
    for stack in (noisy, clean):
        scan_finite(stack)


@pytest.mark.parametrize(
    "datasets, problem",
    [
        ({"a": np.zeros((2, 16, 16))}, r"dataset 'ns' not found \(datasets in file: a\)"),
        ({"ns": np.zeros((2, 16, 16)), "gt": np.zeros((3, 16, 16))}, "must match slice for slice"),
        ({"ns": np.zeros((16, 16)), "gt": np.zeros((16, 16))}, "expected 3 dimensions"),
        ({"ns": np.zeros((2, 8, 8)), "gt": np.zeros((2, 8, 8))}, "smaller than the patch size 16"),
        ({"ns": np.zeros((2, 16, 16), bool), "gt": np.zeros((2, 16, 16))}, "expected integer or"),
        ({"ns": np.zeros((0, 16, 16)), "gt": np.zeros((0, 16, 16))}, "is empty"),
    ],
)
def test_bad_stacks_are_named(tmp_path, datasets, problem):
    path = write(tmp_path / "bad.h5", **datasets)
    with pytest.raises(InputError, match=problem) as err:
        checked_pair(path, min_size=16)
    assert str(err.value).startswith(path)


def test_nan_is_found_before_training(tmp_path):
    noisy = np.zeros((3, 16, 16), np.float32)
    noisy[2, 5, 5] = np.nan
    path = write(tmp_path / "nan.h5", ns=noisy, gt=np.zeros_like(noisy))
    with pytest.raises(InputError, match="NaN or Inf values in slice 2"):
        checked_pair(path)


def test_nan_in_unscanned_slices_is_caught_by_the_reader(tmp_path, monkeypatch):
    monkeypatch.setattr(sources_base, "FULL_SCAN_BYTES", 0)
    monkeypatch.setattr(sources_base, "SAMPLED_SLICES", 2)
    noisy = np.zeros((5, 16, 16), np.float32)
    noisy[2] = np.inf
    path = write(tmp_path / "inf.h5", ns=noisy, gt=np.zeros_like(noisy))
    checked_pair(path)  # samples slices 0 and 4 only
    with pytest.raises(InputError, match="NaN or Inf values near slice 2"):
        StackReader.open(path, "ns", "gt").read(2, 0, 0, 16, 16)


def test_missing_directory_and_corrupt_files(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        open_h5(tmp_path / "missing.h5")
    with pytest.raises(InputError, match="is a directory"):
        open_h5(tmp_path)
    corrupt = tmp_path / "corrupt.h5"
    corrupt.write_bytes(b"definitely not hdf5" * 100)
    with pytest.raises(InputError, match="cannot read as HDF5"):
        open_h5(corrupt)
