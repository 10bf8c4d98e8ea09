"""Tests of the shared pieces of data_tools: metrics, progress, and the package's own rules."""

from __future__ import annotations

import ast
import importlib
import inspect
import warnings
from pathlib import Path

import numpy as np
import pytest

import data_tools
from data_tools import cli, metrics

PACKAGE = Path(data_tools.__file__).parent
MODULES = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def _stacks() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    clean = np.stack([0.02 * rng.random((8, 8)), 0.05 * rng.random((8, 8)) - 0.01])
    noisy = clean + 0.002 * rng.standard_normal(clean.shape)
    return noisy, clean


def test_mean_psnr_uses_one_window_for_the_whole_stack() -> None:
    noisy, clean = _stacks()
    window = clean.max() - clean.min()  # of the stack, not of each slice
    mse = ((noisy - clean) ** 2).mean(axis=(1, 2))
    expected = np.mean(10 * np.log10(window**2 / mse))
    assert metrics.mean_psnr(noisy, clean) == pytest.approx(expected, rel=1e-12)
    assert metrics.mean_psnr(noisy, clean) != pytest.approx(
        metrics.psnr_per_slice(noisy, clean).mean(), rel=1e-3
    )


def test_psnr_per_slice_uses_each_clean_slice_window() -> None:
    noisy, clean = _stacks()
    window = clean.max(axis=(1, 2)) - clean.min(axis=(1, 2))
    mse = ((noisy - clean) ** 2).mean(axis=(1, 2))
    psnr = metrics.psnr_per_slice(noisy, clean)
    assert psnr.shape == (2,) and psnr.dtype == np.float64
    np.testing.assert_allclose(psnr, 10 * np.log10(window**2 / mse), rtol=1e-12)


def test_identical_stacks_are_infinite_psnr_without_warnings() -> None:
    _, clean = _stacks()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metrics.mean_psnr(clean, clean) == np.inf
        assert np.all(metrics.psnr_per_slice(clean, clean) == np.inf)


def test_psnr_refuses_mismatched_or_non_stack_shapes() -> None:
    noisy, clean = _stacks()
    for a, b in ((noisy[:1], clean), (noisy[0], clean[0])):
        for psnr in (metrics.mean_psnr, metrics.psnr_per_slice):
            with pytest.raises(ValueError, match=r"expected two equal \(N, H, W\) stacks"):
                psnr(a, b)


def test_progress_shows_keras_progbar_only_when_enabled(capsys: pytest.CaptureFixture) -> None:
    quiet = cli.Progress(3, enabled=False)
    for done in range(1, 4):
        quiet.update(done)
    quiet.close()
    assert capsys.readouterr().out == ""
    shown = cli.Progress(3, enabled=True, unit="slice")
    for done in range(1, 4):
        shown.update(done)
    shown.close()
    assert "3/3" in capsys.readouterr().out


def test_no_module_uses_another_modules_private_names() -> None:
    """What data_tools modules share is public: no ``from data_tools.x import _y``."""
    offences = []
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        modules = set()  # local names bound to data_tools modules
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("data_tools"):
                for alias in node.names:
                    if alias.name.startswith("_"):
                        offences.append(f"{path.name}: imports {node.module}.{alias.name}")
                    if node.module == "data_tools":
                        modules.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                modules |= {a.asname or a.name for a in node.names if "data_tools" in a.name}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in modules
                and node.attr.startswith("_")
            ):
                offences.append(f"{path.name}: uses {node.value.id}.{node.attr}")
    assert offences == []


@pytest.mark.parametrize("name", MODULES)
def test_public_names_are_documented_and_typed(name: str) -> None:
    module = importlib.import_module(f"data_tools.{name}")
    assert (module.__doc__ or "").strip(), f"data_tools.{name} has no docstring"
    for public in module.__all__:
        obj = getattr(module, public)
        if not (inspect.isfunction(obj) or inspect.isclass(obj)):
            continue
        assert inspect.getdoc(obj), f"{name}.{public} has no docstring"
        if inspect.isfunction(obj):
            signature = inspect.signature(obj)
            assert signature.return_annotation is not inspect.Signature.empty, public
            for param in signature.parameters.values():
                assert param.annotation is not inspect.Parameter.empty, (public, param.name)
