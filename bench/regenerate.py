"""Regenerate the speed and memory sections of ``bench/RESULTS.md`` from the current code.

    python bench/regenerate.py                         # every section (about an hour)
    python bench/regenerate.py --only cli training     # some of them
    python bench/regenerate.py --list                  # the sections and their commands

Each section runs its benchmark commands one after another (each benchmark starts its
own processes, so no figure shares a process with another section's), and replaces its
part of RESULTS.md with what they printed, under the commands and a line saying when,
where and at which commit it was measured. A command that fails is marked as failed in
its section, under what it printed before; the other commands and sections still run.
Run it on a quiet machine: every figure is a time.
The held-out quality table (issue 6) has its own command, ``bench/quality.py``, because it
needs a trained CARE peer.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results import RESULTS, ROOT, provenance, write_section


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    about: str
    commands: tuple[str, ...]


SECTIONS = (
    Section(
        "cli",
        "Denoising through the whole command line, against a float32 eager script",
        "Whole processes, start-up and files included: the plain eager script a user would"
        " write first (the reference), then `python -m tomogan_tf.denoise` with the shipped"
        " model at its default precision (`auto`) and at each precision. The issue's target is"
        " the default at 3x the reference.",
        ("python bench/bench_cli.py",),
    ),
    Section(
        "precision",
        "Inference by family and precision",
        "One forward pass of a random image (3-D: cube) per family, random weights; float32"
        " eager is the reference of each process, and every figure is also a ratio to it."
        ' "max diff" is the mixed output\'s largest difference from float32, relative to the'
        " output's range. ImageDenoisingGAN runs at 512 and 1024 px and ADL at 512 only:"
        " their float32 eager passes at 2048 (ADL's at 1024 too, alone on the machine) need"
        " more than this machine's 24 GiB, and the kernel killed them.",
        (
            "python bench/bench_precision.py --families tomogan --sizes 512 1024 2048 --repeats 3"
            " --xla",
            "python bench/bench_precision.py --families idgan --sizes 512 1024 --repeats 1",
            "python bench/bench_precision.py --families adl --sizes 512 --repeats 1",
            "python bench/bench_precision.py --families adl3d --cubes 32 64 --repeats 1",
        ),
    ),
    Section(
        "precision_quality",
        "Quality each precision costs the shipped models",
        "The held-out benchmark of issue 6 (`bench/quality.py`'s rows and protocol), each"
        " shipped model at each precision. `--precision auto` takes a mixed policy only where"
        " it loses at most 0.05 dB (`tomogan_tf/utils/precision.py`, `QUALITY_LOSS_DB`).",
        ("python bench/precision_quality.py",),
    ),
    Section(
        "training",
        "A training iteration against the original TomoGAN loop",
        "The original TomoGAN TF2 loop (`../shared/anchors/tomogan_tf2_loop/main-gan.py`,"
        " its public code with the shims TF 2.21 needs, run outside the package) against the"
        " package's `build_trainer` and compiled `train_step`, one generator and two critic"
        " steps an iteration, VGG19 with random weights on both sides (ImageNet's cannot be"
        " downloaded here), random in-memory batches. Each row is its own process; the"
        " package's iterations are timed inside one `fit` call. The original computes its"
        " VGG features in NumPy, so no gradient flows from them; every package row with VGG"
        " back-propagates through it. The issue's target is 3x the original at its defaults"
        " (batch 16, patch 256) with the VGG gradient.",
        (
            "python bench/bench_vs_original.py --precisions float32 mixed_bfloat16",
            "python bench/bench_vs_original.py --mbsz 4 --psz 128 --iterations 5"
            " --precisions float32 mixed_bfloat16",
        ),
    ),
    Section(
        "pipeline",
        "The HDF5 patch pipeline against what training consumes",
        "`patch_dataset` streaming TomoGAN's training elements from a 64-slice 1024x1024"
        " pair file stored three ways, against the in-memory NumPy crops of one thread and"
        " against a fast GPU's demand (10 iterations/s of 3 batches); the issue asks for 5x"
        " that demand.",
        (
            "python bench/bench_pipeline.py",
            "python bench/bench_pipeline.py --psz 64 --mbsz 8",
        ),
    ),
    Section(
        "autotune",
        "tf.data's tuning thread at the end of a `fit` call",
        "Why the package's datasets run with tf.data's autotuner off"
        " (`tomogan_tf.data.pipeline.loaded`): a fixed amount of work per step, `fit` for a"
        " few steps with the autotuner on (TensorFlow's default) and off, alternately in one"
        " process. \"wait\" is from the last step's end to `fit`'s return.",
        ("python bench/bench_autotune_wait.py",),
    ),
    Section(
        "stack_memory",
        "Peak memory against stack length",
        "`python -m tomogan_tf.denoise` with the shipped model on 256x256 HDF5 stacks, each"
        " in a fresh process, into each output format; the reference is the 100-slice stack of"
        " the same format. The issue's target: 2000 slices within 10 % of 100 slices' peak.",
        ("python bench/bench_stack_memory.py",),
    ),
)


def markdown(printed: str) -> str:
    """A benchmark's stdout as markdown: tables as they are, every other line a paragraph."""
    blocks, table = [], []
    for line in printed.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            blocks.append("\n".join(table))
            table = []
        if line.strip():
            blocks.append(line.strip())
    if table:
        blocks.append("\n".join(table))
    return "\n\n".join(blocks)


def run_section(section: Section, log_dir: Path) -> tuple[str, bool]:
    """The section's text, and whether a command failed (its log says why; the text says so)."""
    failed = False
    parts = [f"## {section.title}", "", provenance(), "", section.about]
    for number, command in enumerate(section.commands, 1):
        log = log_dir / f"{section.key}-{number}.log"
        started = time.perf_counter()
        print(f"  $ {command}    (stderr: {log})", flush=True)
        with open(log, "w") as err:
            proc = subprocess.Popen(
                shlex.split(command.replace("python ", f"{shlex.quote(sys.executable)} ", 1)),
                cwd=ROOT, stdout=subprocess.PIPE, stderr=err, text=True,
                env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's package
            )  # fmt: skip
            printed = []
            for line in proc.stdout:
                print(f"    {line}", end="", flush=True)
                printed.append(line)
            proc.wait()
        minutes = (time.perf_counter() - started) / 60
        parts += ["", f"    {command}", "", f"({minutes:.0f} min)", "", markdown("".join(printed))]
        if proc.returncode != 0:
            killed = " (killed by the system: out of memory?)" if proc.returncode == -9 else ""
            print(f"  failed (exit {proc.returncode}) after {minutes:.1f} min: see {log}")
            parts += ["", f"**This command failed** (exit {proc.returncode}{killed}) after"
                      f" {minutes:.0f} min; above is what it printed before."]  # fmt: skip
            failed = True
    return "\n".join(parts), failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[s.key for s in SECTIONS], metavar="SECTION")
    parser.add_argument("--list", action="store_true", help="print the sections and stop")
    parser.add_argument("--results", default=str(RESULTS), help="the markdown file to update")
    parser.add_argument("--logs", default=str(ROOT / "runs" / "bench-logs"))
    args = parser.parse_args()
    chosen = [s for s in SECTIONS if not args.only or s.key in args.only]
    if args.list:
        for s in chosen:
            print(f"{s.key}: {s.title}\n" + "".join(f"    {c}\n" for c in s.commands))
        return
    log_dir = Path(args.logs)
    log_dir.mkdir(parents=True, exist_ok=True)
    failed = []
    for i, section in enumerate(chosen, 1):
        now = datetime.datetime.now().strftime("%H:%M")
        print(f"[{i}/{len(chosen)}] {section.key} ({now}): {section.title}", flush=True)
        text, broke = run_section(section, log_dir)
        if broke:
            failed.append(section.key)
        write_section(args.results, section.key, text)
        print(f"  written to {args.results}", flush=True)
    if failed:
        sys.exit(f"a command failed in: {', '.join(failed)} (the sections say which)")


if __name__ == "__main__":
    main()
