"""Shared fixtures and the automatic level markers (see tests/README.md).

The helpers live in ``helpers.py`` and are re-exported here under their old names,
so ``from conftest import run_module`` keeps working; new tests import them
``from helpers import ...``.
"""

from __future__ import annotations

import inspect
import os
import sys
from pathlib import Path

import pytest

# Plain assert statements in the shared modules report their operands like tests do.
# (Only on pytest's own import of this file: a test doing ``from conftest import ...``
# imports it a second time, under another name, after the modules are loaded.)
if "helpers" not in sys.modules:
    pytest.register_assert_rewrite("harness", "helpers")

from helpers import (
    ROOT,
    correlation,
    file_sha256,
    run_module,
    smooth_stack,
    write_pair_file,
)

import tomogan_tf  # noqa: F401  (checks the Keras backend before any test imports TF)

__all__ = [
    "LEVELS",
    "ROOT",
    "correlation",
    "file_sha256",
    "pair_file",
    "run_module",
    "smooth_stack",
    "write_pair_file",
]

# Quiet TensorFlow's C++ start-up notices in the test workers (run_module drops this
# again for the tools, which silence them themselves, as a user sees them).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pytest_configure(config: pytest.Config) -> None:
    """Graph optimisation as the tools set it: Grappler off on this CPU-only machine.

    Besides its measured run-time effect (`tomogan_tf.utils.graph`), on the tests' tiny
    shapes it costs most of a training step's first call (ADL: 15.8 s -> 5.3 s).
    """
    from tomogan_tf.utils.graph import tune_graph_optimizer

    tune_graph_optimizer()


TESTS = Path(__file__).resolve().parent

# Every test has exactly one level. A file sets its own with
# ``pytestmark = pytest.mark.<level>``, a test with its own marker; otherwise a test
# that runs a tool as a user does (``run_module``, a subprocess) is "cli", and the
# folder decides for the rest: tests/cli/ is "cli", tests/training/ "integration"
# (whole training runs), any other folder "unit".
LEVELS = ("unit", "integration", "cli")
FOLDER_LEVELS = {"cli": "cli", "training": "integration"}
DEFAULT_LEVEL = "unit"
_RUNS_A_TOOL = ("run_module(", "subprocess.")


def level_of(item: pytest.Item) -> str:
    """The level an unmarked test gets from what it runs and where it lives."""
    function = getattr(item, "function", None)
    try:
        source = inspect.getsource(function) if function is not None else ""
    except (OSError, TypeError):
        source = ""
    if any(call in source for call in _RUNS_A_TOOL):
        return "cli"
    parts = Path(item.path).resolve().relative_to(TESTS).parts
    return FOLDER_LEVELS.get(parts[0], DEFAULT_LEVEL) if len(parts) > 1 else DEFAULT_LEVEL


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        marked = sorted({m.name for m in item.iter_markers() if m.name in LEVELS})
        if len(marked) > 1:
            raise pytest.UsageError(f"{item.nodeid} has several levels: {', '.join(marked)}")
        if not marked:
            item.add_marker(getattr(pytest.mark, level_of(item)))


@pytest.fixture
def pair_file(tmp_path) -> str:
    """A small TomoGAN-layout HDF5 file of noisy/clean pairs (see `write_pair_file`)."""
    return write_pair_file(str(tmp_path / "pairs.h5"))
