"""CSBDeep's CARE as a benchmark peer, trained on our training data for a fixed wall time.

    python bench/care_peer.py train --h5 train.h5 --out runs/care --minutes 60 --threads 1
    python bench/care_peer.py denoise --model runs/care --h5 in.h5 --key test_ns --out out.npy

``bench/quality.py`` compares our denoiser against this peer, so the peer follows CARE's own
recipe (``examples/denoising2D``) and defaults wherever the data allow, and departs from them
only where stated below. It reads exactly what ``tomogan_tf.train`` reads by default:
``train_ns`` -> ``train_gt`` for training, ``test_ns`` / ``test_gt`` for validation (16 slices
evenly spaced over the stack, as ``--val_slices`` does), which picks ``weights_best.h5``.

Training data: ``RawData.from_arrays(train_ns, train_gt, axes="YX")`` -> ``create_patches``
with CARE's default patch filter (``no_background_patches()``: skips air-only patches) and
default normalisation (``norm_percentiles()``: each patch pair is scaled by percentiles of
*its own raw image pair*, low percentile drawn from [1, 3], high from [99.5, 99.9], noisy
and clean separately). No augmentation (``transforms=None``, the default).

Patches are 64x64, not the 128x128 of the denoising2D example: a 256x256 slice holds 16
disjoint 64x64 tiles but only 4 of 128x128, so patches from the same slice overlap less and a
batch of 16 patches spans more anatomy; a step also costs a quarter of a 128x128 step, which
matters on a CPU budget. (The default U-Net's receptive field, ~84 px, exceeds 64, so border
pixels of a patch see zero padding in training; whole slices are predicted.)
``N_PATCHES_PER_IMAGE = 16`` draws as many pixels as a slice has, so the patch set is about
the size of the training stack in memory.

Model: ``Config("YX", n_channel_in=1, n_channel_out=1)`` with CARE's defaults (probabilistic
False, U-Net depth 2, kernel 5, 32 first filters, residual, linear last activation,
``train_loss="mae"``, Adam 4e-4, batch 16, ReduceLROnPlateau(0.5, patience 10 epochs)), except
``train_epochs=1000`` and ``train_steps_per_epoch=100``: the run ends on wall time, not on
epochs, and 100-step epochs validate / checkpoint four times as often as the default 400
(ReduceLROnPlateau's patience, counted in epochs, is then 1000 steps instead of 4000).

Prediction: ``model.predict(img, axes="YX")`` with CARE's default ``PercentileNormalizer()``
(2 / 99.8 percentiles of the input, undone on the output). The network learnt to output the
clean image scaled by the *clean* image's percentiles, but the output is mapped back with the
*noisy* input's (noise widens them), so it carries an offset and gain error in 1/mm. With
``affine_fit`` (default) each slice is therefore refitted by least squares, ``a*pred + b``
against the noisy input only (no clean image is read).

csbdeep is a benchmark-only dependency, imported inside the functions.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np

PATCH_SIZE = (64, 64)
N_PATCHES_PER_IMAGE = 16
VAL_SLICES = 16  # like tomogan_tf.train --val_slices
TRAIN_EPOCHS = 1000
STEPS_PER_EPOCH = 100
HEARTBEAT_SECONDS = 60.0
_INSTALL_HINT = "the CARE peer needs csbdeep (benchmark only): pip install csbdeep tensorboard"


def _limit_tf_threads(threads: int) -> int:
    """Give TF ``threads`` intra-op and 1 inter-op threads; return the intra-op count in force.

    Must run before TF executes anything (the machine is shared). If TF was already
    initialised in this process, the setting cannot change: warn and report what is in force.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError as err:
        print(f"warning: TF threads not changed ({err})", file=sys.stderr)
    return tf.config.threading.get_intra_op_parallelism_threads()


def _import_csbdeep() -> Any:
    """Import csbdeep, failing with an install hint (it is never a package dependency)."""
    try:
        import csbdeep
        import csbdeep.data
        import csbdeep.models
        import csbdeep.utils
    except ImportError as err:
        raise ImportError(f"{_INSTALL_HINT} ({err})") from err
    return csbdeep


def _read_pairs(h5: str, ns_key: str, gt_key: str) -> tuple[np.ndarray, np.ndarray]:
    """Both (N, H, W) stacks as float32 arrays (the file is small enough for memory)."""
    with h5py.File(h5, "r") as f:
        for key in (ns_key, gt_key):
            if key not in f:
                raise KeyError(f"{h5}: no dataset {key!r}")
        ns = np.asarray(f[ns_key][...], dtype=np.float32)
        gt = np.asarray(f[gt_key][...], dtype=np.float32)
    if ns.ndim != 3 or ns.shape != gt.shape:
        raise ValueError(f"{h5}: {ns_key} {ns.shape} and {gt_key} {gt.shape} must be equal 3-D")
    if min(ns.shape[1:]) < min(PATCH_SIZE):
        raise ValueError(f"{h5}: slices {ns.shape[1:]} are smaller than the patch {PATCH_SIZE}")
    return ns, gt


def _care_patches(ns: np.ndarray, gt: np.ndarray, verbose: bool) -> tuple[np.ndarray, np.ndarray]:
    """CARE's training patches (default filter and normalisation), channel axis last (SYXC)."""
    from csbdeep.data import RawData, create_patches
    from csbdeep.utils import move_channel_for_backend

    raw = RawData.from_arrays(ns, gt, axes="YX")
    X, Y, axes = create_patches(
        raw, patch_size=PATCH_SIZE, n_patches_per_image=N_PATCHES_PER_IMAGE, verbose=verbose
    )
    channel = axes.index("C")  # create_patches returns SCYX; CARE trains on SYXC
    return move_channel_for_backend(X, channel), move_channel_for_backend(Y, channel)


def _budget_callback(minutes: float) -> Any:
    """Keras callback: stop at the end of the batch that crosses ``minutes`` of training time.

    The clock starts at ``on_train_begin`` (after patch extraction, before the first step, so
    graph tracing counts); Keras 3 leaves the epoch at once, validates and checkpoints it.
    Logs each epoch, and a heartbeat line every minute, to stdout.
    """
    from csbdeep.utils.tf import keras_import

    Callback = keras_import("callbacks", "Callback")

    class WallClockBudget(Callback):
        def __init__(self) -> None:
            super().__init__()
            self.budget = 60.0 * float(minutes)
            self.steps = 0
            self.epochs = 0
            self.stopped_on_budget = False
            self.start = self.last_print = 0.0
            self.wall = self.stop_elapsed = 0.0
            self.history: list[dict[str, float]] = []

        def elapsed(self) -> float:
            return time.perf_counter() - self.start

        def on_train_begin(self, logs: dict | None = None) -> None:
            self.start = self.last_print = time.perf_counter()

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            self.steps += 1
            now = time.perf_counter()
            if now - self.last_print >= HEARTBEAT_SECONDS:
                self.last_print = now
                loss = float((logs or {}).get("loss", float("nan")))
                print(f"  step {self.steps}  loss {loss:.5f}  {self.elapsed():.0f} s", flush=True)
            if self.elapsed() >= self.budget and not self.stopped_on_budget:
                self.stopped_on_budget = True
                self.stop_elapsed = self.elapsed()
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.epochs = epoch + 1
            row = {k: float(v) for k, v in (logs or {}).items() if np.isscalar(v)}
            row.update(epoch=self.epochs, steps=self.steps, elapsed=round(self.elapsed(), 1))
            self.history.append(row)
            print(
                f"epoch {self.epochs}  steps {self.steps}  loss {row.get('loss', np.nan):.5f}"
                f"  val_loss {row.get('val_loss', np.nan):.5f}"
                f"  lr {row.get('learning_rate', np.nan):.2g}  elapsed {self.elapsed():.0f} s"
                + ("  (budget reached)" if self.stopped_on_budget else ""),
                flush=True,
            )

        def on_train_end(self, logs: dict | None = None) -> None:
            self.wall = self.elapsed()

    return WallClockBudget()


def train_care(h5: str, outdir: str, minutes: float, threads: int = 1, seed: int = 0) -> dict:
    """Train CARE on ``train_ns`` -> ``train_gt`` of ``h5`` for ``minutes`` of wall time.

    ``outdir`` becomes the CARE model folder (``config.json``, ``weights_best.h5``,
    ``weights_last.h5``, ``logs/``) plus ``peer.json``, whose contents are returned.
    ``seed`` fixes the weights and the patch sampling.
    """
    t_start = time.perf_counter()
    intra = _limit_tf_threads(threads)  # first thing to touch TF
    csbdeep = _import_csbdeep()
    import keras
    import tensorflow as tf
    from csbdeep.models import CARE, Config

    keras.utils.set_random_seed(seed)  # python, numpy (patch sampling, batch order) and TF
    train_ns, train_gt = _read_pairs(h5, "train_ns", "train_gt")
    test_ns, test_gt = _read_pairs(h5, "test_ns", "test_gt")
    val_idx = np.unique(np.linspace(0, len(test_ns) - 1, min(VAL_SLICES, len(test_ns))).round())
    val_idx = val_idx.astype(int)
    X, Y = _care_patches(train_ns, train_gt, verbose=True)
    X_val, Y_val = _care_patches(test_ns[val_idx], test_gt[val_idx], verbose=False)
    print(f"patches: train {X.shape}, validation {X_val.shape}", flush=True)
    del train_ns, train_gt, test_ns, test_gt

    config = Config(
        "YX",
        n_channel_in=1,
        n_channel_out=1,
        train_epochs=TRAIN_EPOCHS,
        train_steps_per_epoch=STEPS_PER_EPOCH,
    )
    out = Path(outdir).resolve()
    model = CARE(config, out.name, basedir=str(out.parent))
    model.prepare_for_training()  # CARE's callbacks; ours goes last
    budget = _budget_callback(minutes)
    model.callbacks.append(budget)
    if not sys.stdout.isatty():
        # CARE.train hard-codes verbose=1: in a log file Keras's per-step bar becomes one
        # huge line. Our callback logs each epoch (and a heartbeat), so silence Keras there.
        keras_fit = model.keras_model.fit

        def quiet_fit(*args: Any, **kwargs: Any) -> Any:
            kwargs["verbose"] = 0
            return keras_fit(*args, **kwargs)

        model.keras_model.fit = quiet_fit
    t_fit = time.perf_counter()
    with warnings.catch_warnings():
        # 16 validation slices, as tomogan_tf uses, are deliberately < 5% of the patches
        warnings.filterwarnings("ignore", message="small number of validation images")
        model.train(X, Y, validation_data=(X_val, Y_val))
    fit_seconds = time.perf_counter() - t_fit

    val_losses = [r["val_loss"] for r in budget.history if "val_loss" in r]
    cmd = ["python", "bench/care_peer.py", "train", "--h5", h5, "--out", outdir]
    cmd += ["--minutes", str(minutes), "--threads", str(threads), "--seed", str(seed)]
    peer = {
        "peer": "CARE (csbdeep)",
        "command": shlex.join(cmd),
        "argv": sys.argv,
        "h5": str(Path(h5).resolve()),
        "model_dir": str(out),
        "minutes": float(minutes),
        "stopped_on_budget": budget.stopped_on_budget,
        "epochs": budget.epochs,
        "steps": budget.steps,
        "train_seconds": round(budget.wall, 1),  # to the end of fit (last validation included)
        "budget_crossed_at_seconds": round(budget.stop_elapsed, 1) or None,
        "fit_seconds": round(fit_seconds, 1),
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "threads_intra_op": intra,
        "threads_inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "seed": seed,
        "train_patches": len(X),
        "val_patches": len(X_val),
        "val_slices": val_idx.tolist(),
        "patch_size": list(PATCH_SIZE),
        "n_patches_per_image": N_PATCHES_PER_IMAGE,
        "train_loss": config.train_loss,
        "batch_size": config.train_batch_size,
        "best_val_loss": min(val_losses) if val_losses else None,
        "history": budget.history,
        "weights": sorted(p.name for p in out.glob("*.h5")),
        "predict_normalizer": "PercentileNormalizer() (pmin 2, pmax 99.8)",
        "versions": {
            "csbdeep": csbdeep.__version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    }
    (out / "peer.json").write_text(json.dumps(peer, indent=2) + "\n")
    print(f"saved {out} ({budget.epochs} epochs, {budget.steps} steps, {budget.wall:.0f} s)")
    return peer


def _affine_to(pred: np.ndarray, noisy: np.ndarray) -> np.ndarray:
    """``a*pred + b`` with (a, b) minimising ||a*pred + b - noisy||^2 over all pixels."""
    p = pred.astype(np.float64).ravel()
    n = noisy.astype(np.float64).ravel()
    pc = p - p.mean()
    var = float(pc @ pc)
    a = float(pc @ (n - n.mean())) / var if var > 0 else 1.0
    b = n.mean() - a * p.mean()
    return (a * pred + b).astype(np.float32)


def care_denoise(model_dir: str, stack: np.ndarray, affine_fit: bool = True) -> np.ndarray:
    """Denoise (N, H, W) (or one (H, W)) ``stack`` in 1/mm with the CARE model in ``model_dir``.

    CARE's standard prediction (input percentiles 2 / 99.8, undone on the output), then,
    with ``affine_fit``, a per-slice least-squares gain/offset against the noisy slice
    itself, which removes the de-normalisation offset explained in the module docstring.
    TF threads are whatever the process set (the CLI sets them; see ``_limit_tf_threads``).
    """
    _import_csbdeep()
    from csbdeep.data import PercentileNormalizer
    from csbdeep.models import CARE

    d = Path(model_dir).resolve()
    if not (d / "config.json").exists():
        raise FileNotFoundError(f"{d}: no CARE config.json (train with bench/care_peer.py train)")
    model = CARE(None, d.name, basedir=str(d.parent))  # loads weights_best.h5
    stack = np.asarray(stack, dtype=np.float32)
    slices = stack[None] if stack.ndim == 2 else stack
    if slices.ndim != 3:
        raise ValueError(f"expected (N, H, W) or (H, W), got {stack.shape}")
    out = np.empty_like(slices)
    for i, img in enumerate(slices):
        pred = model.predict(img, axes="YX", normalizer=PercentileNormalizer())
        out[i] = _affine_to(pred, img) if affine_fit else pred
    return out[0] if stack.ndim == 2 else out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train CARE for a wall-clock budget")
    tr.add_argument("--h5", required=True, help="file with train_ns/train_gt/test_ns/test_gt")
    tr.add_argument("--out", required=True, help="model folder to write")
    tr.add_argument("--minutes", type=float, required=True, help="training wall time")
    tr.add_argument("--threads", type=int, default=1, help="TF intra-op threads")
    tr.add_argument("--seed", type=int, default=0)
    de = sub.add_parser("denoise", help="denoise one stack of an HDF5 file to .npy")
    de.add_argument("--model", required=True, help="model folder written by 'train'")
    de.add_argument("--h5", required=True)
    de.add_argument("--key", default="test_ns", help="(N, H, W) stack to denoise")
    de.add_argument("--out", required=True, help=".npy output, float32 (N, H, W) in 1/mm")
    de.add_argument("--threads", type=int, default=1, help="TF intra-op threads")
    de.add_argument(
        "--no-affine-fit",
        dest="affine_fit",
        action="store_false",
        help="return CARE's prediction without the per-slice gain/offset fit",
    )
    args = parser.parse_args(argv)
    try:
        if args.cmd == "train":
            train_care(args.h5, args.out, args.minutes, args.threads, args.seed)
            return
        _limit_tf_threads(args.threads)
        with h5py.File(args.h5, "r") as f:
            stack = np.asarray(f[args.key][...], dtype=np.float32)
        t0 = time.perf_counter()
        result = care_denoise(args.model, stack, affine_fit=args.affine_fit)
        np.save(args.out, result)
        print(
            f"wrote {args.out}: {result.shape} {result.dtype} in {time.perf_counter() - t0:.1f} s;"
            f" input mean {stack.mean():.5f} std {stack.std():.5f},"
            f" output mean {result.mean():.5f} std {result.std():.5f}"
        )
    except ImportError as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
