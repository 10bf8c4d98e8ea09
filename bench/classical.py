"""Classical denoisers and the scoring protocol of the held-out CT quality benchmark.

    python bench/classical.py --h5 heldout.h5 [--rows i0_1e4_ns,...] [--methods tv,nlm,...]

Imported by ``bench/quality.py``; the command line prints the table for a file written by
``python -m data_tools.make_heldout_ct`` (every row scored against its ``clean`` stack).

Scoring (`score`): per slice, skimage's ``peak_signal_noise_ratio`` and
``structural_similarity`` (defaults otherwise) with ``data_range = clean.max() - clean.min()``
of *that clean slice* ("window: each clean slice's min..max", the protocol of the issue
report), in the stacks' own units (1/mm).  `mean_score` averages the per-slice figures.

Units: every method works on the slice mapped to [0, 1] by a fixed affine map of the *noisy*
slice (its 0.5 and 99.5 percentiles -> 0 and 1, `to_unit`) and maps the result back with the
same map, so a strength parameter means the same thing on every slice and in any units.
Noise level: ``sigma_est = skimage.restoration.estimate_sigma`` of the unit-scaled slice
(robust wavelet MAD of the finest diagonal band; FBP noise is spatially correlated, so this
is an estimate of its high-frequency part, which is what the rules below were written for).

Methods (each ``f(noisy_slice, param) -> denoised`` in the slice's own units, param in unit
scale) and their *estimated* setting, i.e. each method's documented default rule:

``tv``       ``denoise_tv_chambolle(weight)``; weight by the discrepancy principle of the ROF
             model that Chambolle's algorithm solves (Rudin-Osher-Fatemi 1992; Chambolle 2004,
             sec. 4): the weight whose residual RMS ``|u - f|`` equals ``sigma_est`` (found by
             bisection in log weight, 8 steps over sigma_est/16 .. 16 sigma_est).
``nlm``      ``denoise_nl_means(h, fast_mode=True, patch_size=5, patch_distance=6)`` with
             ``h = 0.8 * sigma_est`` (skimage's gallery example "Non-local means denoising for
             preserving textures", fast mode without sigma).
``wavelet``  ``denoise_wavelet(sigma, method="BayesShrink", mode="soft", rescale_sigma=True)``
             (skimage's defaults and gallery example, db1); estimated: ``sigma=None``, i.e. its
             own MAD estimate on the finest db1 detail band.
``bm3d``     ``bm3d.bm3d(z, sigma_psd=sigma)`` (profile "np", both stages); estimated:
             ``sigma = sigma_est`` (white-noise call, no PSD).  Optional: the ``bm3d`` package
             (Tampere University) is free for non-commercial use only, so it is a
             benchmark-only tool, imported inside the function, and never a dependency of
             tomogan_tf; without it the bm3d rows are skipped with a warning.

*Oracle* setting: one multiplier k per row times a per-slice reference strength, chosen to
maximise the MEAN PSNR against ``clean`` over the row's slices.  The reference is the
method's estimated strength for nlm (0.8 sigma_est), wavelet (the sigma passed in, relative
to its own MAD estimate) and bm3d (sigma_est), so k = 1 *is* the estimated setting and the
oracle cannot do worse on its tuning slices; for tv it is sigma_est (weight = k sigma_est),
as its estimated weight comes from a per-slice search.  Rows report the strength as a
multiple of sigma_est (``parameter``) and k.  The oracle is tuned on the very slices it is
scored on, on purpose: it is "the best a user could get" from the method with one knob
setting per dataset and a perfect choice of it, an upper bound for the method rather than a
fair held-out figure.  Search (coarse to fine, in log k): k in {0.5, 1, 2}, extended by
factors of 2 while the best is at an end (within 1/16 .. 16), then the best k times
2^(+-1/2), then times 2^(+-1/4): 7 values (more after an extension), final resolution
2^(1/4) ~ 19 %.  tv, nlm and wavelet are tuned on all slices of the row; bm3d (about 1.5-5 s
per 256x256 slice on one core) on `TUNE_SLICES` ["bm3d"] = 6 evenly spaced slices of the
row, and the chosen k is then run on all slices (results on the tuning slices are reused).
Budget for 32 slices x 3 rows: about 280 bm3d calls in all (estimated + oracle), 7-25
minutes depending on the machine's load.

Timing: ``s_per_slice`` is the mean wall time per slice of the method at its chosen setting:
unit scaling, ``sigma_est`` (when the setting uses it), TV's discrepancy search (estimated
TV), the denoising and the map back; scoring excluded.  Single-threaded figures need
``OMP_NUM_THREADS=1`` (set it before starting Python).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import (
    denoise_nl_means,
    denoise_tv_chambolle,
    denoise_wavelet,
    estimate_sigma,
)

__all__ = [
    "METHODS",
    "TUNE_SLICES",
    "bm3d",
    "bm3d_available",
    "denoise_stack",
    "from_unit",
    "mean_score",
    "nlm",
    "noise_sigma",
    "run_classical",
    "score",
    "to_unit",
    "tune_indices",
    "tv",
    "tv_discrepancy_weight",
    "wavelet",
]

METHODS = ("tv", "nlm", "wavelet", "bm3d")
#: Slices the oracle is tuned on, per method (absent: all slices of the row).
TUNE_SLICES: dict[str, int] = {"bm3d": 6}
NLM_PATCH = dict(patch_size=5, patch_distance=6)
NLM_H = 0.8  # h = NLM_H * sigma_est (skimage gallery, fast mode)
PERCENTILES = (0.5, 99.5)
_K_START = (0.5, 1.0, 2.0)
_K_LIMITS = (1.0 / 16.0, 16.0)
_BM3D_MISSING = (
    "bm3d is not installed: `pip install bm3d` (Tampere University; free for non-commercial "
    "use only, so a benchmark-only tool, never a tomogan_tf dependency)"
)


# --------------------------------------------------------------------------------------------
# scoring
# --------------------------------------------------------------------------------------------


def _stack(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[None] if x.ndim == 2 else x


def score(denoised: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-slice (psnr, ssim) arrays of ``denoised`` vs ``clean``: (H, W) or (N, H, W) each.

    ``data_range`` is max - min of each clean slice (the benchmark protocol).
    """
    den, ref = _stack(denoised), _stack(clean)
    if den.shape != ref.shape or den.ndim != 3:
        raise ValueError(f"expected equal (N, H, W) or (H, W) arrays, got {den.shape}, {ref.shape}")
    psnr = np.empty(len(ref))
    ssim = np.empty(len(ref))
    for i, (d, c) in enumerate(zip(den, ref, strict=True)):
        data_range = float(c.max() - c.min())
        psnr[i] = peak_signal_noise_ratio(c, d, data_range=data_range)
        ssim[i] = structural_similarity(c, d, data_range=data_range)
    return psnr, ssim


def mean_score(denoised: np.ndarray, clean: np.ndarray) -> tuple[float, float]:
    """Mean over slices of `score`: (mean PSNR in dB, mean SSIM)."""
    psnr, ssim = score(denoised, clean)
    return float(psnr.mean()), float(ssim.mean())


# --------------------------------------------------------------------------------------------
# units and noise level
# --------------------------------------------------------------------------------------------


def to_unit(noisy: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(unit, lo, hi): ``noisy`` mapped by its 0.5/99.5 percentiles lo, hi to 0 and 1."""
    x = np.asarray(noisy, dtype=np.float64)
    lo, hi = (float(v) for v in np.percentile(x, PERCENTILES))
    if not hi > lo:
        hi = lo + 1.0
    return (x - lo) / (hi - lo), lo, hi


def from_unit(unit: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Inverse of `to_unit`."""
    return unit * (hi - lo) + lo


def noise_sigma(noisy: np.ndarray) -> float:
    """``estimate_sigma`` of the unit-scaled slice (the sigma_est of every rule here)."""
    return float(estimate_sigma(to_unit(noisy)[0]))


# --------------------------------------------------------------------------------------------
# methods: _xxx_unit work on unit-scaled slices; the public wrappers take any units
# --------------------------------------------------------------------------------------------


def _tv_unit(u: np.ndarray, weight: float) -> np.ndarray:
    return denoise_tv_chambolle(u, weight=weight)


def _nlm_unit(u: np.ndarray, h: float) -> np.ndarray:
    return denoise_nl_means(u, h=h, fast_mode=True, **NLM_PATCH)


def _wavelet_unit(u: np.ndarray, sigma: float | None) -> np.ndarray:
    return denoise_wavelet(u, sigma=sigma, method="BayesShrink", mode="soft", rescale_sigma=True)


def bm3d_available() -> bool:
    """Whether the optional ``bm3d`` package can be imported."""
    try:
        import bm3d as _  # noqa: F401
    except ImportError:
        return False
    return True


def _bm3d_unit(u: np.ndarray, sigma: float) -> np.ndarray:
    try:
        import bm3d as bm3d_lib
    except ImportError as err:
        raise ImportError(_BM3D_MISSING) from err
    return np.asarray(bm3d_lib.bm3d(u, sigma_psd=sigma), dtype=np.float64)


def _tv_weight_unit(u: np.ndarray, sigma: float, steps: int = 8) -> float:
    """Discrepancy principle: the TV weight whose residual RMS equals ``sigma``."""
    lo, hi = math.log2(sigma) - 4.0, math.log2(sigma) + 4.0

    def residual(log_w: float) -> float:
        return float(np.sqrt(np.mean((_tv_unit(u, 2.0**log_w) - u) ** 2)))

    if residual(hi) <= sigma:
        return 2.0**hi
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if residual(mid) < sigma:
            lo = mid
        else:
            hi = mid
    return 2.0 ** (0.5 * (lo + hi))


def _in_units(fn: Callable[[np.ndarray, Any], np.ndarray], noisy: np.ndarray, param: Any):
    u, lo, hi = to_unit(noisy)
    return from_unit(fn(u, param), lo, hi)


def tv(noisy: np.ndarray, weight: float) -> np.ndarray:
    """Chambolle TV denoising; ``weight`` in unit scale (see the module docstring)."""
    return _in_units(_tv_unit, noisy, weight)


def nlm(noisy: np.ndarray, h: float) -> np.ndarray:
    """Fast non-local means, patch 5, distance 6; ``h`` in unit scale."""
    return _in_units(_nlm_unit, noisy, h)


def wavelet(noisy: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """BayesShrink soft wavelet denoising; ``sigma`` in unit scale, None = its own estimate."""
    return _in_units(_wavelet_unit, noisy, sigma)


def bm3d(noisy: np.ndarray, sigma: float) -> np.ndarray:
    """BM3D (optional ``bm3d`` package, benchmark only); ``sigma`` in unit scale."""
    return _in_units(_bm3d_unit, noisy, sigma)


def tv_discrepancy_weight(noisy: np.ndarray, sigma: float | None = None) -> float:
    """The estimated TV weight (unit scale) of a slice: residual RMS = sigma (default sigma_est)."""
    u = to_unit(noisy)[0]
    return _tv_weight_unit(u, float(estimate_sigma(u)) if sigma is None else sigma)


def _wavelet_own_sigma(u: np.ndarray) -> float:
    """The noise sigma denoise_wavelet estimates itself (MAD of the finest db1 'dd' band)."""
    import pywt  # a dependency of skimage's wavelet denoising

    dd = pywt.dwt2(u, "db1")[1][2]
    dd = dd[np.nonzero(dd)]  # skimage masks out exact zeros (constant regions) too
    return float(np.median(np.abs(dd)) / 0.6744897501960817)


@dataclass(frozen=True)
class _Method:
    run: Callable[[np.ndarray, Any], np.ndarray]  # (unit slice, strength) -> unit slice
    param: str  # name of the strength parameter
    rule: str  # the estimated setting, in words
    reference: str  # what the oracle's multiplier k multiplies
    ref: Callable[[np.ndarray, float], float]  # (unit slice, sigma_est) -> reference strength


_METHODS: dict[str, _Method] = {
    "tv": _Method(
        _tv_unit,
        "weight",
        "discrepancy principle: residual RMS = sigma_est",
        "sigma_est",
        lambda u, sigma: sigma,
    ),
    "nlm": _Method(
        _nlm_unit,
        "h",
        f"h = {NLM_H} sigma_est, fast, patch 5, distance 6",
        f"{NLM_H} sigma_est",
        lambda u, sigma: NLM_H * sigma,
    ),
    "wavelet": _Method(
        _wavelet_unit,
        "sigma",
        "BayesShrink soft db1, sigma=None (its own MAD estimate)",
        "its own MAD sigma",
        lambda u, sigma: _wavelet_own_sigma(u),
    ),
    "bm3d": _Method(
        _bm3d_unit,
        "sigma_psd",
        "sigma_psd = sigma_est (profile np)",
        "sigma_est",
        lambda u, sigma: sigma,
    ),
}


# --------------------------------------------------------------------------------------------
# benchmark rows
# --------------------------------------------------------------------------------------------


@dataclass
class _Prepared:
    """A row's slices in unit scale with their maps back, sigma_est and its cost."""

    units: list[np.ndarray]
    maps: list[tuple[float, float]]
    sigmas: np.ndarray
    sigma_seconds: np.ndarray
    clean: np.ndarray


def _prepare(noisy: np.ndarray, clean: np.ndarray) -> _Prepared:
    noisy, clean = _stack(noisy), _stack(clean)
    if noisy.shape != clean.shape or noisy.ndim != 3:
        raise ValueError(f"expected equal (N, H, W) stacks, got {noisy.shape}, {clean.shape}")
    units, maps, sigmas, secs = [], [], [], []
    for x in noisy:
        start = time.perf_counter()
        u, lo, hi = to_unit(x)
        sigmas.append(float(estimate_sigma(u)))
        secs.append(time.perf_counter() - start)
        units.append(u)
        maps.append((lo, hi))
    return _Prepared(units, maps, np.array(sigmas), np.array(secs), clean)


def tune_indices(n: int, method: str, tune_slices: int | None = None) -> np.ndarray:
    """Slices the oracle of ``method`` is tuned on: all, or ``tune_slices`` evenly spaced."""
    m = TUNE_SLICES.get(method) if tune_slices is None else tune_slices
    if m is None or m >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max(int(m), 1)).round().astype(int))


class _Evaluator:
    """Runs one method on one row's slices at multipliers k, caching (psnr, ssim, seconds)."""

    def __init__(self, name: str, prep: _Prepared) -> None:
        self.method, self.prep = _METHODS[name], prep
        self.cache: dict[tuple[float, int], tuple[float, float, float]] = {}
        refs, secs = [], []
        for u, sigma in zip(prep.units, prep.sigmas, strict=True):
            start = time.perf_counter()
            refs.append(self.method.ref(u, sigma))
            secs.append(time.perf_counter() - start)
        self.refs = np.array(refs)
        # the wavelet's own sigma replaces sigma_est; the others need sigma_est
        base = 0.0 if name == "wavelet" else prep.sigma_seconds
        self.ref_seconds = np.array(secs) + base

    def slice_result(self, k: float, i: int) -> tuple[float, float, float]:
        key = (float(k), int(i))
        if key not in self.cache:
            p = self.prep
            start = time.perf_counter()
            out = from_unit(self.method.run(p.units[i], k * self.refs[i]), *p.maps[i])
            seconds = time.perf_counter() - start + self.ref_seconds[i]
            psnr, ssim = score(out, p.clean[i])
            self.cache[key] = (float(psnr[0]), float(ssim[0]), seconds)
        return self.cache[key]

    def mean_psnr(self, k: float, idx: np.ndarray) -> float:
        return float(np.mean([self.slice_result(k, i)[0] for i in idx]))

    def search(self, idx: np.ndarray) -> tuple[float, bool]:
        """Coarse-to-fine best multiplier on slices ``idx``; also whether it hit a limit."""
        log_ks = [math.log2(k) for k in _K_START]
        lim_lo, lim_hi = (math.log2(k) for k in _K_LIMITS)
        scores = {lk: self.mean_psnr(2.0**lk, idx) for lk in log_ks}
        while True:  # extend the coarse grid while the best is at an end
            best = max(scores, key=scores.__getitem__)
            if best == min(scores) and best - 1 >= lim_lo:
                scores[best - 1] = self.mean_psnr(2.0 ** (best - 1), idx)
            elif best == max(scores) and best + 1 <= lim_hi:
                scores[best + 1] = self.mean_psnr(2.0 ** (best + 1), idx)
            else:
                break
        for step in (0.5, 0.25):
            best = max(scores, key=scores.__getitem__)
            for lk in (best - step, best + step):
                if lim_lo <= lk <= lim_hi and lk not in scores:
                    scores[lk] = self.mean_psnr(2.0**lk, idx)
        best = max(scores, key=scores.__getitem__)
        at_limit = best in (lim_lo, lim_hi)
        return 2.0**best, at_limit


def _estimated(name: str, prep: _Prepared, ev: _Evaluator) -> tuple[list, np.ndarray]:
    """Per-slice (psnr, ssim, seconds) and strengths (unit scale) of the estimated setting.

    nlm, wavelet and bm3d: k = 1 on their reference (shared with the oracle search's cache);
    tv: the per-slice discrepancy weight.
    """
    if name != "tv":
        return [ev.slice_result(1.0, i) for i in range(len(prep.units))], ev.refs.copy()
    results, strengths = [], []
    for i, u in enumerate(prep.units):
        start = time.perf_counter()
        weight = _tv_weight_unit(u, prep.sigmas[i])
        out = from_unit(_tv_unit(u, weight), *prep.maps[i])
        seconds = time.perf_counter() - start + prep.sigma_seconds[i]
        psnr, ssim = score(out, prep.clean[i])
        results.append((float(psnr[0]), float(ssim[0]), seconds))
        strengths.append(weight)
    return results, np.array(strengths)


def _row(
    name: str, setting: str, results: list, k: float, strengths: np.ndarray, prep: _Prepared, **kw
) -> dict:
    psnr = np.array([r[0] for r in results])
    ssim = np.array([r[1] for r in results])
    method = _METHODS[name]
    ratio = float(np.mean(strengths / prep.sigmas))
    return {
        "method": name,
        "setting": setting,
        "family": "classical",
        "param_label": f"{method.param} = {ratio:.2f} sigma_est",
        "parameter": ratio,
        "param_name": method.param,
        "k": float(k),
        "reference": method.reference,
        "strength": float(np.mean(strengths)),
        "psnr": float(psnr.mean()),
        "ssim": float(ssim.mean()),
        "s_per_slice": float(np.mean([r[2] for r in results])),
        "n_slices": len(results),
        "psnr_slices": psnr,
        "ssim_slices": ssim,
        **kw,
    }


def run_classical(
    noisy_stack: np.ndarray,
    clean_stack: np.ndarray,
    methods: Sequence[str] = METHODS,
    *,
    tune_slices: dict[str, int | None] | None = None,
    log: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """Score each method's estimated and oracle settings on one row (noisy stack vs clean).

    Returns one dict per (method, setting), in ``methods`` order, estimated first:
    ``method``, ``setting`` ("estimated" / "oracle"), ``family`` ("classical"),
    ``param_label`` (e.g. "h = 1.90 sigma_est"), ``parameter`` (the strength as a
    multiple of sigma_est, mean over slices), ``param_name``, ``k`` (the multiplier of
    ``reference`` searched by the oracle; 1 for the estimated setting, NaN for estimated tv),
    ``reference``, ``strength`` (mean strength in unit scale), ``psnr`` / ``ssim`` (means),
    ``s_per_slice``, ``n_slices``, ``psnr_slices`` / ``ssim_slices`` (per-slice arrays),
    ``rule`` (estimated rows) or ``tuned_on`` (oracle rows: number of tuning slices) and
    ``at_limit`` (the oracle's best k was the search limit 1/16 or 16).  ``tune_slices``
    overrides `TUNE_SLICES` per method (None = all slices).  bm3d is skipped with a warning
    when the package is missing.  ``log`` gets one line per finished row.
    """
    unknown = [m for m in methods if m not in _METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {', '.join(METHODS)}")
    prep = _prepare(noisy_stack, clean_stack)
    n = len(prep.units)
    rows: list[dict[str, Any]] = []
    for name in methods:
        if name == "bm3d" and not bm3d_available():
            warnings.warn(f"skipping bm3d: {_BM3D_MISSING}", stacklevel=2)
            continue
        ev = _Evaluator(name, prep)
        results, strengths = _estimated(name, prep, ev)
        k_est = 1.0 if name != "tv" else float("nan")
        est = _row(name, "estimated", results, k_est, strengths, prep, rule=_METHODS[name].rule)
        m = (tune_slices or {}).get(name, TUNE_SLICES.get(name))
        idx = tune_indices(n, name, m if m is not None else n)
        k, at_limit = ev.search(idx)
        results = [ev.slice_result(k, i) for i in range(n)]
        oracle = _row(
            name, "oracle", results, k, k * ev.refs, prep, tuned_on=len(idx), at_limit=at_limit
        )
        rows += [est, oracle]
        if log:
            for r in (est, oracle):
                log(_format_row(r))
    return rows


def denoise_stack(
    noisy_stack: np.ndarray, method: str, k: float | None = None
) -> tuple[np.ndarray, float]:
    """(denoised stack float32, seconds per slice) of ``method`` at ``k`` x its reference.

    The reference strength per slice is the method's estimated setting (tv: sigma_est), as in
    the oracle search; ``k=None`` is the estimated setting itself (tv: discrepancy weight).
    For figures, or to run an oracle's k (``row["k"]``) on other data.
    """
    spec = _METHODS[method]
    out, total = [], 0.0
    for x in _stack(noisy_stack):
        start = time.perf_counter()
        u, lo, hi = to_unit(x)
        sigma = 0.0 if method == "wavelet" else float(estimate_sigma(u))
        if k is None and method == "tv":
            strength = _tv_weight_unit(u, sigma)
        else:
            strength = (1.0 if k is None else k) * spec.ref(u, sigma)
        out.append(from_unit(spec.run(u, strength), lo, hi))
        total += time.perf_counter() - start
    return np.stack(out).astype(np.float32), total / max(len(out), 1)


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------


def _format_row(r: dict[str, Any]) -> str:
    extra = f" (tuned on {r['tuned_on']})" if r["setting"] == "oracle" else ""
    if r.get("at_limit"):
        extra += " AT SEARCH LIMIT"
    return (
        f"{r['method']:8s} {r['setting']:9s} {r['param_name']:>9s} = {r['parameter']:5.2f} "
        f"sigma_est (k {r['k']:4.2f})  PSNR {r['psnr']:6.2f} dB  SSIM {r['ssim']:.4f}  "
        f"{r['s_per_slice']:6.3f} s/slice{extra}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    import h5py

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--h5", required=True, help="file from data_tools.make_heldout_ct")
    parser.add_argument("--rows", default="i0_1e4_ns,i0_2e3_ns,sparse_ns")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--clean", default="clean", help="reference stack (default clean)")
    args = parser.parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    with h5py.File(args.h5, "r") as f:
        clean = f[args.clean][...]
        rows = {row: f[row][...] for row in args.rows.split(",") if row}
    for row, noisy in rows.items():
        psnr, ssim = mean_score(noisy, clean)
        print(f"{row}: {len(noisy)} slices; noisy PSNR {psnr:.2f} dB, SSIM {ssim:.4f}")
        run_classical(noisy, clean, methods, log=lambda line: print(f"  {line}", flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
