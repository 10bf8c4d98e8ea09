"""Quality on CT the models never saw: shipped models vs classical denoisers vs CARE.

    pip install bm3d csbdeep        # optional, benchmark only (bm3d: non-commercial licence)
    python -m data_tools.make_heldout_ct --out heldout.h5
    python bench/care_peer.py train --h5 train.h5 --out runs/care --minutes 70
    python bench/quality.py --heldout heldout.h5 --care runs/care --results bench/RESULTS.md

Rows are the settings of ``heldout.h5`` (``make_heldout_ct``: phantom styles, pixel sizes,
view counts and slice spacing that training never used): I0 = 1e4 and 2e3 on all views,
and 1/8 of the views at I0 = 1e4, each scored against the noise-free full-view
reconstruction (``clean``) with the issue-report protocol (`classical.score`: skimage
PSNR/SSIM, data range = each clean slice's min..max).

Methods:
- the noisy input;
- scikit-image TV, non-local means and wavelet denoising, and BM3D (the ``bm3d`` package,
  optional, non-commercial licence: benchmark only), each at the setting its own noise
  estimate gives and at the oracle setting: the strength that scores best on these very
  slices, the best a user could ever get out of it (`classical.run_classical`);
- every shipped model (``saved_models/*/``), through `tomogan_tf.Denoiser` exactly as
  ``python -m tomogan_tf.denoise`` runs it, with no dose or view setting; also fed the
  1e4 slices in HU and as uint16 counts (the same answer is promised in any units), and
  one slice at a time (no neighbours, for depth > 1 models);
- CARE (``bench/care_peer.py``), trained on the shipped model's training data for its
  training time, with CARE's own normalisation plus a per-slice affine fit to the input.

No model, parameter or setting of ours is chosen on these slices: the shipped models
were picked by validation on their own training file. The table goes into
``--results`` between the ``quality`` markers, with the command that made it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classical import run_classical, score
from results import provenance, write_section

ROWS = {"i0_1e4": "I0 = 1e4", "i0_2e3": "I0 = 2e3", "sparse": "1/8 of the views, I0 = 1e4"}
WATER_PER_MM = 0.0192


def _hu(mu: np.ndarray) -> np.ndarray:
    return ((mu / WATER_PER_MM - 1.0) * 1000.0).astype(np.float32)


def _from_hu(hu: np.ndarray) -> np.ndarray:
    return ((hu / 1000.0 + 1.0) * WATER_PER_MM).astype(np.float32)


def _counts(offset: float):
    """uint16 CT numbers as a TIFF export stores them: HU + ``offset``, rounded, clipped at 0.

    With a scanner's usual offset 1024 the noise of the air below -1024 HU is clipped
    away (data lost, not only units changed); with 2048 nothing is clipped."""

    def to(mu: np.ndarray) -> np.ndarray:
        return np.clip(np.round(_hu(mu) + offset), 0, 65535).astype(np.uint16)

    def back(c: np.ndarray) -> np.ndarray:
        return _from_hu(c.astype(np.float32) - offset)

    return to, back


def _timed(fn, stack: np.ndarray) -> tuple[np.ndarray, float]:
    fn(stack[:1])  # warm-up: graph tracing is not a per-slice cost
    start = time.perf_counter()
    out = fn(stack)
    return np.asarray(out, np.float32), (time.perf_counter() - start) / len(stack)


def _scored(method: str, setting: str, denoised, clean, seconds, **extra) -> dict:
    psnr, ssim = score(denoised, clean)
    return {
        "method": method,
        "setting": setting,
        "psnr": float(np.mean(psnr)),
        "ssim": float(np.mean(ssim)),
        "s_per_slice": seconds,
        **extra,
    }


def shipped_models(root: str) -> list[str]:
    return sorted(
        str(p.parent)
        for p in Path(root).glob("*/generator.keras")
        if (p.parent / "config.json").exists()
    )


def by_volume(fn, volumes: np.ndarray):
    """``fn`` applied to each scanned volume on its own, as a user denoises each scan:
    a model reading neighbouring slices never sees another volume's."""

    def apply(stack: np.ndarray) -> np.ndarray:
        if len(stack) != len(volumes):  # the warm-up slice
            return fn(stack)
        out = np.empty(stack.shape, np.float32)
        for v in np.unique(volumes):
            (index,) = np.nonzero(volumes == v)
            out[index] = fn(stack[index])
        return out

    return apply


def model_rows(
    model_dir: str,
    noisy: np.ndarray,
    clean: np.ndarray,
    row: str,
    volumes: np.ndarray,
    precision: str = "float32",
) -> list[dict]:
    from tomogan_tf import Denoiser

    name = os.path.basename(model_dir.rstrip("/"))
    den = Denoiser.load(model_dir, precision=precision)
    per_scan = by_volume(den, volumes)
    denoised, seconds = _timed(per_scan, noisy)
    rows = [_scored(name, "as shipped", denoised, clean, seconds)]
    if row == "i0_1e4":  # the same slices in the units most CT comes in
        for units, (to, back) in (
            ("HU", (_hu, _from_hu)),
            ("uint16, HU + 2048", _counts(2048.0)),
            ("uint16, HU + 1024 (air clipped at 0)", _counts(1024.0)),
        ):
            out = back(per_scan(to(noisy)))
            rows.append(_scored(name, f"input in {units}", out, clean, seconds))
    if den.depth > 1:  # a user with single images: no neighbours to read
        single, seconds = _timed(lambda s: np.stack([den(image) for image in s]), noisy)
        rows.append(_scored(name, "one slice at a time", single, clean, seconds))
    return rows


def care_rows(care_dir: str, noisy: np.ndarray, clean: np.ndarray) -> list[dict]:
    from care_peer import care_denoise

    denoised, seconds = _timed(lambda s: care_denoise(care_dir, s), noisy)
    return [_scored("CARE (csbdeep)", "peer, same data and time", denoised, clean, seconds)]


def run(
    heldout: str,
    models: list[str],
    care: str | None,
    methods: list[str],
    precision: str = "float32",
) -> dict:
    # A fixed-window model handed HU passes slices through with a warning; the table
    # shows what that gives, so the warnings need not fill the log.
    from tomogan_tf.data.normalization import UnmappableWarning

    warnings.simplefilter("ignore", UnmappableWarning)
    table: dict[str, list[dict]] = {}
    with h5py.File(heldout, "r") as f:
        clean = f["clean"][...]
        volumes = f["volume"][...]
        for row in ROWS:
            noisy = f[f"{row}_ns"][...]
            print(f"[{row}] {len(noisy)} slices", flush=True)
            rows = [_scored("noisy input", "", noisy, clean, 0.0)]
            for model in models:
                added = model_rows(model, noisy, clean, row, volumes, precision)
                rows += added
                for e in added:
                    print(f"  {e['method']} {e['setting']}: {e['psnr']:.2f} dB", flush=True)
            if care:
                rows += care_rows(care, noisy, clean)
                print(f"  CARE: {rows[-1]['psnr']:.2f} dB", flush=True)
            for entry in run_classical(noisy, clean, methods=tuple(methods)) if methods else []:
                rows.append(entry)
                print(f"  {entry['method']} {entry['setting']}: {entry['psnr']:.2f} dB", flush=True)
            table[row] = rows
        attrs = {k: (v.tolist() if hasattr(v, "tolist") else v) for k, v in f.attrs.items()}
    return {"rows": table, "heldout": attrs}


def markdown(result: dict, command: str) -> str:
    rows = result["rows"]
    keys: list[tuple[str, str]] = []
    for entries in rows.values():
        for e in entries:
            key = (e["method"], e["setting"])
            if key not in keys:
                keys.append(key)
    header = "| method | setting | " + " | ".join(ROWS[r] for r in rows) + " | s / slice |"
    lines = [header, "|---|---|" + "---|" * len(rows) + "---|"]
    for method, setting in keys:
        cells, seconds = [], []
        for entries in rows.values():
            match = [e for e in entries if (e["method"], e["setting"]) == (method, setting)]
            if match:
                e = match[0]
                param = f" ({e['param_label']})" if e.get("param_label") else ""
                cells.append(f"{e['psnr']:.2f} dB / {e['ssim']:.3f}{param}")
                seconds.append(e["s_per_slice"])
            else:
                cells.append("")
        time_cell = f"{np.mean(seconds):.3f}" if seconds and max(seconds) > 0 else ""
        lines.append(f"| {method} | {setting} | " + " | ".join(cells) + f" | {time_cell} |")
    best = {}
    for row, entries in rows.items():
        classical = [e for e in entries if e.get("family") == "classical"]
        ours = [e for e in entries if e["setting"] == "as shipped"]
        if classical and ours:
            top = max(classical, key=lambda e: e["psnr"])
            mine = max(ours, key=lambda e: e["psnr"])
            best[row] = (
                f"{ROWS[row]}: {mine['method']} {mine['psnr']:.2f} dB vs best classical "
                f"{top['method']} ({top['setting']}) {top['psnr']:.2f} dB: "
                f"{mine['psnr'] - top['psnr']:+.2f} dB"
            )
    h = result["heldout"]
    about = ", ".join(f"{k}={h[k]}" for k in sorted(h) if k not in ("description",))
    return "\n".join(
        [
            "## Quality on held-out CT (`bench/quality.py`)",
            "",
            provenance(),
            "",
            "```",
            command,
            "```",
            "",
            f"Held-out file: {about}.",
            "",
            "Each cell: mean PSNR / SSIM over the slices against the noise-free full-view"
            " reconstruction (skimage, data range = each clean slice's min..max). Oracle ="
            " the strength parameter that scores best on these very slices (the best a user"
            " could get); estimated = the method's own noise-estimate rule. Times are wall"
            " seconds per 256x256 slice on this 2-core CPU.",
            "",
            *lines,
            "",
            *[f"- {v}" for v in best.values()],
        ]
    )


def _plain(value):
    """NumPy values in the JSON dump."""
    return value.tolist() if hasattr(value, "tolist") else str(value)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heldout", required=True, help="file from data_tools.make_heldout_ct")
    parser.add_argument("--models", default=None, help="model dirs, comma-separated "
                        "(default: every saved_models/*/ with generator.keras)")  # fmt: skip
    parser.add_argument("--care", default=None, help="CARE run dir from bench/care_peer.py")
    parser.add_argument("--methods", default="tv,nlm,wavelet,bm3d")
    parser.add_argument("--results", default=None, help="markdown file to put the table in")
    parser.add_argument("--json", default=None, help="also write every figure here")
    parser.add_argument(
        "--precision", default="float32", help="of the shipped models (tomogan_tf --precision)"
    )
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent / "saved_models"
    models = args.models.split(",") if args.models else shipped_models(str(root))
    methods = [m for m in args.methods.split(",") if m]
    result = run(args.heldout, models, args.care, methods, args.precision)
    command = "python bench/quality.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    section = markdown(result, command)
    print(section)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, default=_plain))
    if args.results:
        write_section(args.results, "quality", section)


if __name__ == "__main__":
    main()
