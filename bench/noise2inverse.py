"""Noise2Inverse on scans unlike training: against supervised training, Noise2Self and BM3D,
and the shipped model adapted to the scan.

    pip install bm3d        # optional, benchmark only (non-commercial licence)
    python bench/noise2inverse.py --out runs/n2i_bench --results bench/RESULTS.md

For each dose (``--doses``, photons per detector pixel at the beam centre), one raw Data
Exchange scan of a held-out ``knee`` phantom (``data_tools.make_projection_dataset --style
knee``: anatomy, 0.7 mm pixels and 512 views that the shipped model's training never had),
``--rows`` detector rows of 256 columns, is reconstructed by ``tomogan_tf.reconstruct
--splits 4`` (ramp FBP of the flat/dark-corrected ``-log`` projections, and 4
sub-reconstructions from interleaved quarters of the angles). The clean reference is the
FBP of the noise-free line integrals, all views. Every learned method uses the same slices:
the first 7/12 of the rows train, the next 1/12 validate (the best iteration is picked on
them), the last third are the test slices, read by nothing but the scoring below.

Learned methods: TomoGAN with the shipped model's architecture (depth 3, residual), the
same schedule for every run (``TRAIN`` flags: pixel loss only, no critic, no VGG; cosine
decay from 3e-4, or from 1e-4 when starting from trained weights), through
``python -m tomogan_tf.train`` as a user runs it:

- supervised: full FBP -> clean FBP (clean slices of this very scan: the upper bound);
- n2i: ``--mode n2i`` on the training rows' sub-reconstructions, applied by the method's
  rule (``--inference n2i``: the mean of the K outputs on the K held-out means) and
  directly to the full FBP;
- n2s: ``--mode n2s`` on the full FBP, applied by its rule (``--inference jinv``: each
  pixel predicted with itself hidden, as in training) and directly;
- n2s on projections: ``--mode n2s --layout dxchange`` on the raw scan cropped to the
  training and validation rows (its last angles validate), 32 x 32 patches in batches of
  32 (the cropped projections are 32 rows high; the same pixels per step as 8 x 64 x 64);
  the test rows' projections are denoised by ``tomogan_tf.denoise`` (by the rule,
  ``--inference jinv``, and directly) and reconstructed by
  ``tomogan_tf.reconstruct``, and their inference time is those two commands' wall time,
  start-up included;
- the shipped model as it is, and adapted by ``--init_from shipped`` with n2i, n2s on the
  slices and n2s on the projections, for the same number of iterations as from scratch
  (equal training time), and with n2i for a fifth of them.

Classical: BM3D (when installed) and non-local means at their own noise estimate and at the
oracle strength that scores best on the test slices themselves (`classical.run_classical`).
Scores: skimage PSNR and SSIM with each clean slice's min..max as data range
(`classical.score`). Times: training wall time of each ``train`` command, and inference per
slice, measured in this process.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from classical import bm3d_available, run_classical, score
from results import provenance, write_section

STYLE = "knee"
SPLITS = 4
TRAIN = shlex.split(
    "--psz 64 --mbsz 8 --val_every 100 --lr_schedule cosine --ladv 0"
    " --vgg_weights none --depth 3 --residual"
)
# Learning rates, fixed before any run: from scratch, and for fine-tuning (the package's
# default --lr_g, a third of it, as is usual for starting from trained weights).
SCRATCH_LR, ADAPT_LR = "3e-4", "1e-4"


def run(cmd: list[str], log: Path) -> float:
    """Run a command, its output to ``log``; return its wall time. Fails loudly."""
    start = time.perf_counter()
    with open(log, "w") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if done.returncode:
        sys.exit(f"failed ({done.returncode}): {shlex.join(cmd)}; see {log}")
    return time.perf_counter() - start


def clean_reference(scan: str) -> np.ndarray:
    """FBP of the noise-free line integrals of ``scan``, all views (1/pixel, as recon)."""
    from tomogan_tf.tomography.fbp import fbp

    with h5py.File(scan, "r") as f:
        p = f["reference/line_integrals"][...]  # (angles, rows, W)
        theta = f["exchange/theta"][...]
    sinograms = np.moveaxis(p, 1, 0)  # (rows, angles, W)
    return fbp(sinograms, theta, None, None)


def prepare(out: Path, dose: float, rows: int, seed: int) -> dict[str, Path]:
    """The scan, its reconstruction and the train / test files of one dose."""
    tag = f"i0_{dose:g}"
    scan, recon = out / f"{tag}_scan.h5", out / f"{tag}_recon.h5"
    if not recon.exists():
        make = [sys.executable, "-m", "data_tools.make_projection_dataset", "--out", str(scan),
                "--style", STYLE, "--rows", str(rows), "--size", "256", "--n_angles", "512",
                "--i0", str(dose), "--seed", str(seed), "--overwrite"]  # fmt: skip
        run(make, out / f"{tag}_make.log")
        seconds = run([sys.executable, "-m", "tomogan_tf.reconstruct", "--input", str(scan),
                       "--output", str(recon), "--splits", str(SPLITS), "--overwrite"],
                      out / f"{tag}_reconstruct.log")  # fmt: skip
        (out / f"{tag}_reconstruct.json").write_text(json.dumps({"seconds": seconds}))
    clean = clean_reference(str(scan))
    n_train, n_val = rows * 7 // 12, rows // 12
    test = slice(n_train + n_val, rows)
    files = {"train": out / f"{tag}_train.h5", "test": out / f"{tag}_test.h5"}
    with h5py.File(recon, "r") as r:
        full = r["recon"][...]
        splits = [r[f"split_{k}"][...] for k in range(SPLITS)]
    with h5py.File(files["train"], "w") as f:
        f["train_ns"], f["train_gt"] = full[:n_train], clean[:n_train]
        f["test_ns"], f["test_gt"] = (
            full[n_train : n_train + n_val],
            clean[n_train : n_train + n_val],
        )
        for k, s in enumerate(splits):  # n2i: training and validation rows (--val_fraction)
            f[f"split_{k}"] = s[: n_train + n_val]
    with h5py.File(files["test"], "w") as f:
        f["recon"], f["clean"] = full[test], clean[test]
        for k, s in enumerate(splits):
            f[f"split_{k}"] = s[test]
    files["val_fraction"] = n_val / (n_train + n_val)
    files["scan_train"] = out / f"{tag}_scan_train.h5"
    files["scan_test"] = out / f"{tag}_scan_test.h5"
    crop_rows(scan, files["scan_train"], slice(0, n_train + n_val))
    crop_rows(scan, files["scan_test"], test)
    return files


def crop_rows(scan: Path, out: Path, rows: slice) -> None:
    """A copy of the Data Exchange ``scan`` holding only detector ``rows`` (its slices)."""
    with h5py.File(scan, "r") as src, h5py.File(out, "w") as dst:
        dst.attrs.update(src.attrs)

        def copy(name: str, obj) -> None:
            if isinstance(obj, h5py.Group):
                dst.require_group(name).attrs.update(obj.attrs)
            elif obj.ndim == 3:  # (angles or frames, rows, columns)
                dst.create_dataset(name, data=obj[:, rows]).attrs.update(obj.attrs)
            else:
                src.copy(obj, dst, name=name)

        src.visititems(copy)
        dst.attrs["rows"] = len(range(*rows.indices(src["exchange/data"].shape[1])))


def train(out: Path, name: str, h5: Path, args: list[str], maxiter: int) -> float:
    logdir = out / name
    if (logdir / "metrics.json").exists() and (out / f"{name}.time").exists():
        return float((out / f"{name}.time").read_text())
    cmd = [sys.executable, "-m", "tomogan_tf.train", "--h5", str(h5), "--logdir", str(logdir),
           "--maxiter", str(maxiter), *TRAIN, *args]  # fmt: skip
    cmd += ["--lr_g", ADAPT_LR if "--init_from" in args else SCRATCH_LR]
    seconds = run(cmd, out / f"{name}.log")
    (out / f"{name}.time").write_text(f"{seconds:.1f}")
    return seconds


def scored(name: str, denoised: np.ndarray, clean: np.ndarray, seconds: float) -> dict:
    psnr, ssim = score(denoised, clean)
    return dict(method=name, psnr=float(np.mean(psnr)), ssim=float(np.mean(ssim)),
                s_per_slice=seconds / len(clean))  # fmt: skip


def apply_projections(
    model: Path, scan_test: Path, out: Path, inference: str
) -> tuple[np.ndarray, float]:
    """Denoise the test rows' projections (``--inference``) and reconstruct them, as a
    user would."""
    name = f"{model.name}_{inference}"
    denoised, recon = out / f"{name}_test_denoised.h5", out / f"{name}_test_recon.h5"
    seconds = run([sys.executable, "-m", "tomogan_tf.denoise", "--model", str(model),
                   "--input", str(scan_test), "--output", str(denoised), "--overwrite",
                   "--inference", inference], out / f"{name}_denoise.log")  # fmt: skip
    seconds += run([sys.executable, "-m", "tomogan_tf.reconstruct", "--input", str(denoised),
                    "--output", str(recon), "--overwrite"],
                   out / f"{name}_reconstruct.log")  # fmt: skip
    with h5py.File(recon, "r") as f:
        return f["recon"][...], seconds


def apply(model: str | None, test: Path, inference: str = "direct") -> tuple[np.ndarray, float]:
    from tomogan_tf.data.sources import open_hdf5
    from tomogan_tf.data.sources.splits import open_splits
    from tomogan_tf.inference import Denoiser

    den = Denoiser.load(model, inference=inference, precision="float32")
    source = (
        open_splits(str(test), count=SPLITS)
        if inference == "n2i"
        else open_hdf5(str(test), "recon")
    )
    out = np.empty(source.shape, np.float32)

    def write(start: int, data: np.ndarray) -> None:
        out[start : start + len(data)] = data

    den.stream(source, write)  # warm-up (graph tracing), then timed
    start = time.perf_counter()
    den.stream(source, write)
    return out, time.perf_counter() - start


def one_dose(
    out: Path, dose: float, rows: int, maxiter: int, seed: int, methods, classical: bool
) -> list[dict]:
    files = prepare(out, dose, rows, seed)
    tag = f"i0_{dose:g}"
    h5, test = files["train"], files["test"]
    n2i = ["--mode", "n2i", "--val_fraction", f"{files['val_fraction']:.6f}"]
    n2s_proj = ["--mode", "n2s", "--layout", "dxchange", "--psz", "32", "--mbsz", "32"]
    short = max(1, maxiter // 5)
    runs = {  # name: (training args, iterations, training file)
        "supervised": ([], maxiter, h5),
        "n2i": (n2i, maxiter, h5),
        "n2s": (["--mode", "n2s"], maxiter, h5),
        "n2s_proj": (n2s_proj, maxiter, files["scan_train"]),
        "shipped+n2i": ([*n2i, "--init_from", "shipped"], maxiter, h5),
        "shipped+n2s": (["--mode", "n2s", "--init_from", "shipped"], maxiter, h5),
        "shipped+n2s_proj": ([*n2s_proj, "--init_from", "shipped"], maxiter, files["scan_train"]),
        "n2i_short": (n2i, short, h5),
        "shipped+n2i_short": ([*n2i, "--init_from", "shipped"], short, h5),
    }
    runs = {name: run for name, run in runs.items() if methods is None or name in methods}
    times = {}
    for name, (args, iterations, data) in runs.items():
        times[name] = train(out, f"{tag}_{name}", data, args, iterations)
        print(f"{tag}: trained {name} ({iterations} iterations) in {times[name]:.0f} s", flush=True)
    with h5py.File(test, "r") as f:
        noisy, clean = f["recon"][...], f["clean"][...]
    rows_out = [dict(scored("FBP (noisy input)", noisy, clean, 0.0), train_s=0.0)]
    plan = [
        ("supervised (clean targets of this scan)", "supervised", "direct"),
        ("n2i, K = 4, its rule (mean over the 4 held-out inputs)", "n2i", "n2i"),
        ("n2i, K = 4, applied to the full FBP", "n2i", "direct"),
        ("n2s on the FBP slices, its rule (J-invariant)", "n2s", "jinv"),
        ("n2s on the FBP slices, direct", "n2s", "direct"),
        ("n2s on the projections (its rule), then FBP", "n2s_proj", "projections:jinv"),
        ("n2s on the projections (direct), then FBP", "n2s_proj", "projections:direct"),
        ("shipped model alone", None, "direct"),
        ("shipped + n2i adaptation, its rule", "shipped+n2i", "n2i"),
        ("shipped + n2i adaptation, full FBP", "shipped+n2i", "direct"),
        ("shipped + n2s adaptation, its rule", "shipped+n2s", "jinv"),
        ("shipped + n2s adaptation, direct", "shipped+n2s", "direct"),
        (
            "shipped + n2s on the projections (its rule), then FBP",
            "shipped+n2s_proj",
            "projections:jinv",
        ),
        (
            "shipped + n2s on the projections (direct), then FBP",
            "shipped+n2s_proj",
            "projections:direct",
        ),
        (f"n2i from scratch, {short} iterations, its rule", "n2i_short", "n2i"),
        (f"shipped + n2i, {short} iterations, its rule", "shipped+n2i_short", "n2i"),
    ]
    for label, name, inference in plan:
        if name is not None and name not in runs:
            continue
        model = None if name is None else out / f"{tag}_{name}"
        if inference.startswith("projections:"):
            rule = inference.split(":")[1]
            denoised, seconds = apply_projections(model, files["scan_test"], out, rule)
        else:
            denoised, seconds = apply(model and str(model), test, inference)
        row = scored(label, denoised, clean, seconds)
        row["train_s"] = times.get(name, 0.0)
        row["iterations"] = runs[name][1] if name else 0
        rows_out.append(row)
        print(f"{tag}: {label}: {row['psnr']:.2f} dB, SSIM {row['ssim']:.3f}", flush=True)
    classics = (["nlm", "bm3d"] if bm3d_available() else ["nlm"]) if classical else []
    for result in run_classical(noisy, clean, classics, tune_slices={m: None for m in classics}):
        label = f"{result['method']}, {result['setting']} ({result['param_label']})"
        rows_out.append(dict(method=label, psnr=result["psnr"], ssim=result["ssim"],
                             s_per_slice=result["s_per_slice"], train_s=0.0))  # fmt: skip
        print(f"{tag}: {label}: {result['psnr']:.2f} dB", flush=True)
    return rows_out


def table(dose: float, rows: list[dict], n_test: int) -> str:
    lines = [
        f"**I0 = {dose:g} photons/pixel**, {n_test} test slices of 256 x 256",
        "",
        "| method | PSNR (dB) | SSIM | training (s) | inference (s/slice) |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        train_s = f"{r['train_s']:.0f}" if r.get("train_s") else "-"
        infer = f"{r['s_per_slice']:.3f}" if r.get("s_per_slice") else "-"
        lines.append(f"| {r['method']} | {r['psnr']:.2f} | {r['ssim']:.3f} | {train_s} | {infer} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="runs/n2i_bench")
    parser.add_argument("--doses", type=float, nargs="+", default=[1e4, 2e3])
    parser.add_argument("--rows", type=int, default=48)
    parser.add_argument("--maxiter", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--methods", nargs="+", default=None, help="Train only these runs.")
    parser.add_argument("--no_classical", action="store_true", help="Skip NLM and BM3D.")
    parser.add_argument("--section", default="noise2inverse", help="RESULTS.md section key.")
    parser.add_argument("--results", default=None, help="Write the tables into this RESULTS.md.")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tables = []
    for dose in args.doses:
        rows = one_dose(out, dose, args.rows, args.maxiter, args.seed, args.methods,
                        not args.no_classical)  # fmt: skip
        (out / f"i0_{dose:g}_scores.json").write_text(json.dumps(rows, indent=1))
        tables.append(table(dose, rows, args.rows - args.rows * 7 // 12 - args.rows // 12))
    command = "python bench/noise2inverse.py " + shlex.join(sys.argv[1:])
    body = "\n\n".join([provenance(), f"Command: `{command}`", *tables])
    print(body)
    if args.results:
        write_section(args.results, args.section, body)
    os._exit(0)  # tf.data / TensorFlow threads can hold a plain script at exit


if __name__ == "__main__":
    main()
