"""HDF5 datasets read from the file's bytes: the same values as h5py, without its lock."""

from __future__ import annotations

import os
import threading

import h5py
import numpy as np
import pytest

from tomogan_tf.data import H5_LOCK
from tomogan_tf.data.sources import open_stack
from tomogan_tf.errors import InputError

STACK = np.random.default_rng(0).random((10, 40, 50)).astype(np.float32)

# name: (h5py options, read directly?)
LAYOUTS = {
    "contiguous": ({}, True),
    "chunk_per_slice": ({"chunks": (1, 40, 50)}, True),
    "odd_chunks": ({"chunks": (3, 16, 7)}, True),
    "one_chunk": ({"chunks": (10, 40, 50)}, True),
    "gzip": ({"chunks": (1, 40, 50), "compression": "gzip"}, False),
    "shuffle": ({"chunks": (2, 16, 16), "shuffle": True}, False),
    "big_endian": ({"dtype": ">f4"}, False),
}


@pytest.fixture(scope="module")
def layouts(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("direct") / "layouts.h5")
    with h5py.File(path, "w") as f:
        for name, (options, _) in LAYOUTS.items():
            f.create_dataset(name, data=STACK, **options)
        f.create_dataset("counts", data=(STACK * 1000).astype(np.uint16), chunks=(1, 20, 25))
        f.create_dataset("image", data=STACK[3], chunks=(7, 9))
        sparse = f.create_dataset("sparse", STACK.shape, np.float32, chunks=(2, 16, 16),
                                  fillvalue=-1.0)  # fmt: skip
        sparse[2:4, :16] = STACK[2:4, :16]  # the other chunks are never written
    return path


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_every_storage_layout_reads_the_values_h5py_reads(layouts, name):
    stack = open_stack(layouts, name)
    assert stack.direct is LAYOUTS[name][1]
    rng = np.random.default_rng(1)
    with stack:
        for _ in range(30):
            y0, x0 = rng.integers(0, 40), rng.integers(0, 50)
            region = np.s_[y0 : rng.integers(y0 + 1, 41), x0 : rng.integers(x0 + 1, 51)]
            rows = [int(i) for i in rng.integers(0, 10, size=rng.integers(1, 5))]
            np.testing.assert_array_equal(
                stack.read(rows, region), STACK[rows][(slice(None), *region)]
            )
            z0 = int(rng.integers(0, 10))
            z1 = int(rng.integers(z0 + 1, 11))
            np.testing.assert_array_equal(
                stack.read_range(z0, z1, region), STACK[z0:z1][(slice(None), *region)]
            )
    np.testing.assert_array_equal(stack.read([9, 0]), STACK[[9, 0]])  # outside `with`


def test_integer_images_and_unwritten_chunks_read_as_stored(layouts):
    counts = open_stack(layouts, "counts")
    assert counts.direct and counts.dtype == np.uint16
    want = (STACK * 1000).astype(np.uint16).astype(np.float32)
    np.testing.assert_array_equal(
        counts.read_range(4, 7, np.s_[5:33, 11:50]), want[4:7, 5:33, 11:50]
    )
    image = open_stack(layouts, "image")
    assert image.direct and image.single_image
    np.testing.assert_array_equal(image.read([0, 0], np.s_[3:9, 2:40]), [STACK[3, 3:9, 2:40]] * 2)
    sparse = open_stack(layouts, "sparse")
    expected = np.full_like(STACK, -1.0)
    expected[2:4, :16] = STACK[2:4, :16]
    assert sparse.direct
    np.testing.assert_array_equal(sparse.read_range(0, 10), expected)


def test_direct_reads_need_no_lock(layouts):
    direct, locked = open_stack(layouts, "odd_chunks"), open_stack(layouts, "gzip")
    results = {}

    def read(stack, name):
        results[name] = stack.read([5])

    with H5_LOCK:  # another thread holds HDF5: only the direct read can finish
        threads = [threading.Thread(target=read, args=(s, n)) for s, n in
                   ((direct, "direct"), (locked, "locked"))]  # fmt: skip
        for thread in threads:
            thread.start()
        threads[0].join(timeout=10)
        assert "direct" in results and "locked" not in results
    threads[1].join(timeout=10)
    np.testing.assert_array_equal(results["locked"], results["direct"])


def test_a_truncated_file_is_named_in_one_line(tmp_path):
    path = str(tmp_path / "cut.h5")
    with h5py.File(path, "w") as f:
        f["x"] = np.ones((64, 64, 64), np.float32)
    stack = open_stack(path, "x")
    assert stack.direct
    with open(path, "r+b") as f:
        f.truncate(500_000)  # the metadata survives, most of the data does not
    with pytest.raises(InputError, match=r"cut\.h5: cannot read dataset 'x' \(corrupt file\?"):
        stack.read([60])


def test_a_read_in_flight_keeps_the_file_open_past_the_stacks_close(layouts, monkeypatch):
    """tf.data's threads may still be reading when ``with`` ends: their descriptor must
    stay theirs until the read is done (closing it under them failed with EBADF, and
    the reader then closed the number a second time, whoever held it by then)."""
    from tomogan_tf.data.sources.hdf5_direct import DirectReader

    inside, finish, seen = threading.Event(), threading.Event(), {}
    real_read = DirectReader.read

    def slow_read(self, fd, box):
        seen["fd"] = fd
        inside.set()
        assert finish.wait(timeout=10)
        return real_read(self, fd, box)

    monkeypatch.setattr(DirectReader, "read", slow_read)
    results = {}
    stack = open_stack(layouts, "contiguous")
    with stack:
        thread = threading.Thread(target=lambda: results.update(out=stack.read([4])))
        thread.start()
        assert inside.wait(timeout=10)
    os.fstat(seen["fd"])  # closed by the stack's owner, still open for the reader
    finish.set()
    thread.join(timeout=10)
    np.testing.assert_array_equal(results["out"], STACK[4:5])
    with pytest.raises(OSError):  # the last user closed it
        os.fstat(seen["fd"])
