"""Tests for tomogan_tf.data.dxchange: Data Exchange files, flat/dark correction, write-back."""

from __future__ import annotations

import math
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import file_sha256 as _sha

from tomogan_tf.data import dxchange as dx
from tomogan_tf.data.sinks import DxchangeSink
from tomogan_tf.data.sources import DxchangeStack, open_dxchange
from tomogan_tf.errors import InputError

DARK_2X3 = np.array([[10, 10, 10], [20, 20, 20]], np.float32)
FLAT_2X3 = np.array([[110, 60, 210], [120, 70, 220]], np.float32)  # flat - dark: 100, 50, 200
RAW_2X3 = np.array([[[60, 35, 10], [70, 70, 420]]], np.float32)


def write_dx(
    path: Path,
    data: np.ndarray,
    flats: np.ndarray | None = None,
    darks: np.ndarray | None = None,
    theta: np.ndarray | None = None,
    extras: bool = True,
) -> Path:
    """A Data Exchange file; with ``extras``, the groups and attributes a beamline writes."""
    with h5py.File(path, "w") as f:
        ex = f.create_group("exchange")
        ds = ex.create_dataset("data", data=data)
        if flats is not None:
            ex["data_white"] = flats
        if darks is not None:
            ex["data_dark"] = darks
        if theta is not None:
            ex["theta"] = theta
        if extras:
            f.attrs["facility"] = "APS"
            f["implements"] = "exchange:measurement"
            ex.attrs["description"] = "raw projections"
            ds.attrs["units"] = "counts"
            ds.attrs["axes"] = "theta:y:x"
            inst = f.create_group("measurement/instrument")
            inst.attrs["beamline"] = "2-BM"
            inst["detector/exposure_time"] = 0.05
            inst["detector/exposure_time"].attrs["units"] = "s"
            f["process/recipe"] = np.arange(4, dtype=np.int16)
            f["measurement/data_link"] = h5py.SoftLink("/exchange/data")
    return path


def _identity(source: DxchangeStack, sink: DxchangeSink, batch: int = 2) -> None:
    """The identity "denoiser": read corrected projections, write the same values back."""
    n = source.shape[0]
    for start in range(0, n, batch):
        sink.write(start, source.read(list(range(start, min(n, start + batch)))))


def _tree(f: h5py.File) -> dict[str, object]:
    """Every object and attribute except /exchange/data's values, for comparing files."""
    out: dict[str, object] = {f"/@{k}": v for k, v in f.attrs.items()}

    def visit(name: str, obj) -> None:
        out[f"{name}:kind"] = type(obj).__name__
        out.update({f"{name}@{k}": v for k, v in obj.attrs.items()})
        if isinstance(obj, h5py.Dataset):
            out[f"{name}:dtype"] = obj.dtype
            if name != dx.DATA:
                out[name] = obj[()]

    f.visititems(visit)
    return out


def _same(a: object, b: object) -> bool:
    return bool(np.array_equal(a, b)) if isinstance(a, np.ndarray) else a == b


# ---------------------------------------------------------------- correction arithmetic


def test_flat_dark_correction_hand_computed_2x3() -> None:
    corr = dx.FlatDarkCorrection(DARK_2X3, FLAT_2X3)
    out = corr.apply(RAW_2X3)
    assert out.dtype == np.float32 and out.shape == (1, 2, 3)
    np.testing.assert_allclose(out[0], [[0.5, 0.5, 0.0], [0.5, 1.0, 2.0]], rtol=1e-7)
    # without flats: dark subtraction only
    np.testing.assert_array_equal(
        dx.FlatDarkCorrection(DARK_2X3).apply(RAW_2X3)[0], [[50, 25, 0], [50, 50, 400]]
    )
    # a region of (H, W) uses the matching pixels of dark and flat
    np.testing.assert_allclose(corr.apply(RAW_2X3[:, 1:, 1:], np.s_[1:, 1:])[0], [[1.0, 2.0]])


def test_minus_log_of_known_transmission() -> None:
    dark = np.zeros((1, 4), np.float32)
    flat = np.full((1, 4), 1000.0, np.float32)
    raw = 1000.0 * np.array([[[1.0, 0.5, 0.25, math.exp(-2.0)]]])
    out = dx.FlatDarkCorrection(dark, flat, minus_log=True).apply(raw)
    np.testing.assert_allclose(out[0, 0], [0.0, math.log(2), 2 * math.log(2), 2.0], atol=1e-6)


def test_median_ignores_one_outlier_frame(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    flat = rng.integers(900, 1100, size=(5, 7)).astype(np.uint16)
    dark = rng.integers(90, 110, size=(5, 7)).astype(np.uint16)
    flats = np.stack([flat, np.full_like(flat, 60000), flat])  # a saturated frame
    darks = np.stack([dark, dark, np.zeros_like(dark)])  # a dropped frame
    path = write_dx(tmp_path / "scan.h5", np.ones((2, 5, 7), np.uint16), flats, darks)
    with open_dxchange(path) as source:
        np.testing.assert_array_equal(source.correction.flat, flat)
        np.testing.assert_array_equal(source.correction.dark, dark)
        assert source.info.n_flats == 3 and source.info.n_darks == 3
    # the median of two frames is their mean
    path2 = write_dx(tmp_path / "two.h5", np.ones((2, 5, 7), np.uint16), flats[:2], darks[:1])
    with open_dxchange(path2) as source:
        np.testing.assert_array_equal(source.correction.flat, (flat + 60000.0) / 2)


def test_median_reads_in_row_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flats = np.random.default_rng(1).integers(500, 600, size=(3, 9, 4)).astype(np.uint16)
    path = write_dx(tmp_path / "scan.h5", np.ones((1, 9, 4), np.uint16), flats)
    monkeypatch.setattr(dx, "BLOCK_BYTES", 3 * 4 * 4 * 2)  # two rows of three frames per block
    with open_dxchange(path) as source:
        np.testing.assert_array_equal(source.correction.flat, np.median(flats, axis=0))


def test_zero_and_negative_denominators_are_guarded() -> None:
    dark = np.full((1, 4), 100.0, np.float32)
    flat = np.array([[1100.0, 100.0, 90.0, 1100.0]], np.float32)  # dead (0) and broken (< 0)
    raw = np.array([[[600.0, 100.0, 150.0, 20.0]]], np.float32)
    floor = dx.DENOMINATOR_FLOOR * 1000.0  # a fraction of the median positive denominator
    out = dx.FlatDarkCorrection(dark, flat).apply(raw)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0, 0], [0.5, 0.0, 50.0 / floor, -80.0 / 1000.0], rtol=1e-6)
    logged = dx.FlatDarkCorrection(dark, flat, minus_log=True).apply(raw)
    assert np.isfinite(logged).all()
    # raw at or below dark: the transmission floor gives a large finite line integral
    np.testing.assert_allclose(logged[0, 0, [1, 3]], -math.log(dx.TRANSMISSION_FLOOR), rtol=1e-6)


def test_flat_nowhere_brighter_than_dark_is_an_error() -> None:
    with pytest.raises(InputError, match=r"scan\.h5: flat fields are nowhere brighter"):
        dx.FlatDarkCorrection(np.ones((2, 2)), np.ones((2, 2)), path="scan.h5")


@pytest.mark.parametrize(("with_flat", "minus_log"), [(False, False), (True, False), (True, True)])
def test_apply_invert_round_trip(minus_log: bool, with_flat: bool) -> None:
    rng = np.random.default_rng(2)
    dark = rng.uniform(90, 110, size=(6, 5)).astype(np.float32)
    flat = (dark + rng.uniform(800, 1200, size=(6, 5))).astype(np.float32) if with_flat else None
    raw = (dark + rng.uniform(1, 1500, size=(3, 6, 5))).astype(np.float32)
    corr = dx.FlatDarkCorrection(dark, flat, minus_log)
    np.testing.assert_allclose(corr.invert(corr.apply(raw)), raw, rtol=2e-6)
    region = np.s_[2:5, 1:4]
    part = corr.apply(raw[(slice(None), *region)], region)
    np.testing.assert_array_equal(part, corr.apply(raw)[(slice(None), *region)])
    np.testing.assert_allclose(corr.invert(part, region), raw[(slice(None), *region)], rtol=2e-6)


def test_invert_never_overflows_to_inf() -> None:
    corr = dx.FlatDarkCorrection(np.zeros((1, 2)), np.full((1, 2), 1e3), minus_log=True)
    out = corr.invert(np.array([[[-1e4, np.float32(-100.0)]]]))
    assert np.isfinite(out).all()


def test_minus_log_without_flats_is_an_error(tmp_path: Path) -> None:
    path = write_dx(tmp_path / "noflat.h5", np.ones((2, 3, 3), np.uint16))
    with pytest.raises(InputError) as err, open_dxchange(path, minus_log=True):
        pass
    assert str(err.value) == f"{path}: -log needs flat fields (exchange/data_white)"


# ---------------------------------------------------------------- malformed files


def _bad(**kw):
    data = kw.pop("data", np.ones((3, 4, 5), np.uint16))
    return lambda path: write_dx(path, data, **kw)


def _no_data(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f["exchange/projections"] = np.ones((2, 3, 3))
        f["measurement/x"] = 1.0


def _data_is_group(path: Path) -> None:
    with h5py.File(path, "w") as f:
        f.create_group("exchange/data")


MALFORMED = {
    "no data": (_no_data, r"not a Data Exchange file: dataset 'exchange/data' not found .*"
                r"exchange/projections, measurement/x"),
    "data is a group": (_data_is_group, "dataset 'exchange/data' not found"),
    "data 4-D": (_bad(data=np.ones((2, 3, 4, 5))), r"shape \(2, 3, 4, 5\); expected \(N, H, W\)"),
    "data 1-D": (_bad(data=np.ones(5)), r"shape \(5,\); expected \(N, H, W\)"),
    "data strings": (_bad(data=np.array([[b"a", b"b"]])), "projections 'exchange/data' .*dtype"),
    "data empty": (_bad(data=np.ones((0, 4, 5))), r"'exchange/data' are empty \(shape"),
    "flats 1-D": (_bad(flats=np.ones(5)), "flat fields 'exchange/data_white' has shape"),
    "flats 4-D": (_bad(flats=np.ones((1, 2, 4, 5))), "flat fields .* expected \\(frames, H, W\\)"),
    "flats bool": (_bad(flats=np.ones((2, 4, 5), bool)), "flat fields .* has dtype bool"),
    "flats empty": (_bad(flats=np.ones((0, 4, 5))), "flat fields 'exchange/data_white' is empty"),
    "flats size": (_bad(flats=np.ones((2, 4, 6))), "flat fields .* are 4x6 pixels but .* 4x5"),
    "darks size": (_bad(darks=np.ones((5, 4))), "dark fields .* are 5x4 pixels but .* 4x5"),
    "darks empty": (_bad(darks=np.ones((4, 0))), "dark fields 'exchange/data_dark' is empty"),
    "theta 2-D": (_bad(theta=np.ones((3, 1))), r"angles 'exchange/theta' are \(3, 1\); expected"),
    "theta length": (_bad(theta=np.arange(4.0)), "angles .* have 4 values for 3 projections"),
    "theta strings": (_bad(theta=np.array([b"a", b"b", b"c"])), "angles .* dtype"),
    "flats NaN": (
        _bad(flats=np.where(np.arange(40).reshape(2, 4, 5) == 7, np.nan, 1.0)),
        "flat fields 'exchange/data_white' contain NaN or Inf",
    ),
    "darks Inf": (
        _bad(darks=np.where(np.arange(20).reshape(4, 5) == 19, np.inf, 0.0).astype("f4")),
        "dark fields 'exchange/data_dark' contain NaN or Inf",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_file_gives_one_clear_error(tmp_path: Path, case: str) -> None:
    build, problem = MALFORMED[case]
    path = tmp_path / "bad.h5"
    build(path)
    with pytest.raises(InputError) as err, open_dxchange(path):
        pass
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert err.value.path == str(path)
    assert re.search(problem, message), message


@pytest.mark.parametrize("content", [None, b"not hdf5"])
def test_missing_or_corrupt_file(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "scan.h5"
    if content is not None:
        path.write_bytes(content)
    problem = f"{re.escape(str(path))}: (file not found|cannot read as HDF5)"
    with pytest.raises(InputError, match=problem), open_dxchange(path):
        pass


def test_nan_projection_is_reported_by_index(tmp_path: Path) -> None:
    data = np.ones((4, 3, 3), np.float32)
    data[2, 1, 1] = np.nan
    path = write_dx(tmp_path / "scan.h5", data)
    with open_dxchange(path) as source:
        assert source.read([0, 1]).shape == (2, 3, 3)
        with pytest.raises(
            InputError, match=re.escape(f"{path}: NaN or Inf values in projection 2")
        ):
            source.read([1, 2, 3])


# ---------------------------------------------------------------- source


def test_inspect_reports_what_the_file_holds(tmp_path: Path) -> None:
    theta = np.linspace(0, 180, 3, endpoint=False)
    path = write_dx(
        tmp_path / "scan.h5", np.ones((3, 4, 5), np.uint16), np.ones((2, 4, 5)), np.ones((4, 5)),
        theta,
    )  # fmt: skip
    with h5py.File(path, "r") as f:
        info = dx.inspect_dxchange(f)
    assert (info.path, info.shape, info.dtype) == (str(path), (3, 4, 5), np.uint16)
    assert (info.n_flats, info.n_darks, info.single_projection) == (2, 1, False)
    np.testing.assert_array_equal(info.theta, theta)
    with h5py.File(write_dx(tmp_path / "bare.h5", np.ones((3, 4, 5))), "r") as f:
        info = dx.inspect_dxchange(f)
    assert (info.n_flats, info.n_darks, info.theta) == (0, 0, None)


def test_source_reads_any_index_order(tmp_path: Path) -> None:
    data = np.arange(10 * 2 * 3, dtype=np.uint16).reshape(10, 2, 3)
    path = write_dx(tmp_path / "scan.h5", data, darks=np.ones((2, 3), np.uint16))
    with open_dxchange(path) as source:
        assert (source.path, source.key, source.shape) == (str(path), "exchange/data", (10, 2, 3))
        assert source.dtype == np.uint16 and source.single_image is False
        for indices in ([2, 0, 0, 1], [9, 0], [3]):
            out = source.read(indices)
            assert out.dtype == np.float32
            np.testing.assert_array_equal(out, data[indices] - 1.0)
        with pytest.raises(InputError, match=r"outside 0\.\.9"):
            source.read([10])


VARIANTS = {
    "odd size, 1 flat, 2-D dark, uint16": ((3, 5, 7), np.uint16, (1, 5, 7), (5, 7)),
    "2-D flat, no darks, uint8": ((2, 3, 5), np.uint8, (3, 5), None),
    "no flats, no darks, int32": ((3, 4, 3), np.int32, None, None),
    "darks only, float32": ((2, 5, 3), np.float32, None, (2, 5, 3)),
    "flats and darks, float64": ((4, 3, 5), np.float64, (3, 3, 5), (2, 3, 5)),
    "single 2-D projection": ((5, 6), np.uint16, (2, 5, 6), (5, 6)),
}


@pytest.mark.parametrize("case", VARIANTS)
def test_variants_read_and_round_trip(tmp_path: Path, case: str) -> None:
    shape, dtype, flat_shape, dark_shape = VARIANTS[case]
    rng = np.random.default_rng(3)
    top = 200 if dtype == np.uint8 else 5000
    darks = None if dark_shape is None else rng.integers(5, 20, dark_shape).astype(dtype)
    flats = None if flat_shape is None else rng.integers(top // 2, top, flat_shape).astype(dtype)
    data = rng.integers(20, top, shape).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        data += rng.random(shape).astype(dtype)
    path = write_dx(tmp_path / "scan.h5", data, flats, darks, extras=False)
    dark = 0.0 if darks is None else np.median(darks.reshape(-1, *shape[-2:]), axis=0)
    expected = data.astype(np.float64) - dark
    if flats is not None:
        expected /= np.median(flats.reshape(-1, *shape[-2:]), axis=0) - dark
    out = tmp_path / "out.h5"
    with open_dxchange(path) as source:
        assert source.shape == ((1, *shape) if len(shape) == 2 else shape)
        assert source.single_image is (len(shape) == 2) and source.dtype == dtype
        n = source.shape[0]
        np.testing.assert_allclose(source.read(list(range(n))), expected.reshape(n, *shape[-2:]),
                                   rtol=1e-5)  # fmt: skip
        with DxchangeSink(out, source) as sink:
            assert (sink.shape, sink.dtype, sink.format) == (source.shape, dtype, "hdf5")
            _identity(source, sink)
    with h5py.File(out, "r") as f:
        written = f[dx.DATA][()]
    assert written.dtype == dtype and written.shape == shape
    if np.issubdtype(dtype, np.integer):
        np.testing.assert_array_equal(written, data)
    else:
        np.testing.assert_allclose(written, data, rtol=1e-6)


# ---------------------------------------------------------------- sink


@pytest.mark.parametrize(
    ("dtype", "minus_log"),
    [(np.uint16, False), (np.uint16, True), (np.float32, False), (np.float64, True)],
)
def test_data_exchange_round_trip(tmp_path: Path, dtype: type, minus_log: bool) -> None:
    rng = np.random.default_rng(4)
    darks = rng.integers(95, 105, (2, 6, 9)).astype(dtype)
    flats = rng.integers(3000, 4000, (3, 6, 9)).astype(dtype)
    data = rng.integers(110, 3000, (5, 6, 9)).astype(dtype)
    if np.issubdtype(dtype, np.floating):
        data += rng.random(data.shape).astype(dtype)
    theta = np.linspace(0.0, 180.0, 5, endpoint=False)
    src = write_dx(tmp_path / "scan.h5", data, flats, darks, theta)
    before = _sha(src)
    out = tmp_path / "scan_denoised.h5"
    with (
        open_dxchange(src, minus_log=minus_log) as source,
        DxchangeSink(out, source, attrs={"model": "identity"}) as sink,
    ):
        assert (sink.path, sink.key) == (str(out), "exchange/data")
        _identity(source, sink)
    assert _sha(src) == before  # the input is never touched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.h5", "scan_denoised.h5"]
    with h5py.File(src, "r") as a, h5py.File(out, "r") as b:
        if np.issubdtype(dtype, np.integer):
            np.testing.assert_array_equal(b[dx.DATA][()], data)
        else:
            np.testing.assert_allclose(b[dx.DATA][()], data, rtol=1e-6)
        assert b[dx.DATA].dtype == dtype and b[dx.DATA].chunks == (1, 6, 9)
        tree_a, tree_b = _tree(a), _tree(b)
        assert tree_b.pop("exchange/data@model") == "identity"
        assert tree_a.keys() == tree_b.keys()
        for key, value in tree_a.items():
            assert _same(value, tree_b[key]), key
        assert b.get("measurement/data_link", getlink=True).path == "/exchange/data"
        np.testing.assert_array_equal(b[dx.THETA][()], theta)


def test_float_input_without_correction_round_trips_exactly(tmp_path: Path) -> None:
    data = np.random.default_rng(5).random((3, 4, 5))  # float64
    src = write_dx(tmp_path / "scan.h5", data)
    with open_dxchange(src) as source, DxchangeSink(tmp_path / "o.h5", source, "f4") as sink:
        _identity(source, sink)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        np.testing.assert_array_equal(f[dx.DATA][()], data.astype(np.float32))


def test_compressed_input_gives_compressed_output(tmp_path: Path) -> None:
    src = tmp_path / "scan.h5"
    with h5py.File(src, "w") as f:
        f.create_dataset("exchange/data", data=np.ones((3, 4, 5), "u2"), compression="gzip")
    with open_dxchange(src) as source, DxchangeSink(tmp_path / "o.h5", source) as sink:
        _identity(source, sink)
    with h5py.File(tmp_path / "o.h5", "r") as f:
        assert f[dx.DATA].compression == "gzip" and f[dx.DATA].chunks == (1, 4, 5)
        np.testing.assert_array_equal(f[dx.DATA][()], np.ones((3, 4, 5)))


def test_integer_output_is_rounded_and_clipped(tmp_path: Path) -> None:
    src = write_dx(tmp_path / "scan.h5", np.full((1, 1, 3), 10, np.uint8))
    with open_dxchange(src) as source, DxchangeSink(tmp_path / "o.h5", source) as sink:
        sink.write(0, np.array([[[-5.0, 7.6, 300.0]]], np.float32))
    with h5py.File(tmp_path / "o.h5", "r") as f:
        np.testing.assert_array_equal(f[dx.DATA][()], [[[0, 8, 255]]])


def test_error_inside_sink_leaves_nothing(tmp_path: Path) -> None:
    src = write_dx(tmp_path / "scan.h5", np.ones((4, 3, 3), np.uint16), np.full((3, 3), 9))
    out = tmp_path / "out.h5"
    with open_dxchange(src) as source:
        with pytest.raises(RuntimeError, match="model crashed"), DxchangeSink(out, source) as s:
            s.write(0, source.read([0, 1]))
            raise RuntimeError("model crashed")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["scan.h5"]
        out.write_bytes(b"precious")  # an existing output survives a failed run too
        with pytest.raises(RuntimeError), DxchangeSink(out, source):
            raise RuntimeError("again")
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "scan.h5"]


def test_sink_refuses_the_input_and_bad_paths(tmp_path: Path) -> None:
    src = write_dx(tmp_path / "scan.h5", np.ones((2, 3, 3), np.uint16))
    with open_dxchange(src) as source:
        with pytest.raises(InputError, match=re.escape(f"{src}: is the input file")):
            DxchangeSink(src, source)
        (tmp_path / "link.h5").symlink_to(src)
        with pytest.raises(InputError, match=r"link\.h5: is the input file"):
            DxchangeSink(tmp_path / "link.h5", source)
        with pytest.raises(InputError, match=r"output folder .* does not exist"):
            DxchangeSink(tmp_path / "missing" / "out.h5", source)
        with pytest.raises(InputError, match="is a directory"):
            DxchangeSink(tmp_path, source)
