"""What each precision costs the shipped models in quality, on the held-out CT benchmark.

    python bench/precision_quality.py [--heldout heldout.h5]
                                      [--precisions float32 mixed_bfloat16 mixed_float16]

Scores every shipped model (``saved_models/*/``) at each precision on the rows of
`bench/quality.py` (same file, protocol and Denoiser calls, no classical methods), and
prints PSNR / SSIM and the PSNR change from float32, the reference of the same run.
`tomogan_tf.utils.precision.QUALITY_LOSS_DB` holds the largest loss of each policy, which
``--precision auto`` checks against the 0.05 dB it allows. Without ``--heldout`` the
file is made first by ``python -m data_tools.make_heldout_ct`` in a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import quality

REFERENCE = "float32"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--heldout", help="file from data_tools.make_heldout_ct")
    parser.add_argument(
        "--precisions", nargs="+", default=[REFERENCE, "mixed_bfloat16", "mixed_float16"]
    )
    args = parser.parse_args()
    precisions = [REFERENCE] + [p for p in args.precisions if p != REFERENCE]
    models = quality.shipped_models(str(Path(__file__).resolve().parent.parent / "saved_models"))
    with tempfile.TemporaryDirectory() as tmp:
        heldout = args.heldout
        if heldout is None:
            heldout = os.path.join(tmp, "heldout.h5")
            subprocess.run(
                [sys.executable, "-m", "data_tools.make_heldout_ct", "--out", heldout],
                check=True, stdout=sys.stderr,
            )  # fmt: skip
        results = {}
        for precision in precisions:
            with contextlib.redirect_stdout(sys.stderr):  # its progress lines
                results[precision] = quality.run(heldout, models, None, [], precision)["rows"]
    reference = results[REFERENCE]
    keys = [(e["method"], e["setting"]) for e in next(iter(reference.values()))
            if e["method"] != "noisy input"]  # fmt: skip
    print("PSNR dB / SSIM on each row of the held-out file; in brackets, the change from float32.")
    print("| model | input | precision | " + " | ".join(quality.ROWS[r] for r in reference) + " |")
    print("|---|---|---|" + "---|" * len(reference))
    worst = {}
    for method, setting in keys:
        for precision in precisions:
            cells = []
            for row, entries in results[precision].items():
                key = (method, setting)
                found = [e for e in entries if (e["method"], e["setting"]) == key]
                if not found:
                    cells.append("")
                    continue
                e = found[0]
                (base,) = [r for r in reference[row] if (r["method"], r["setting"]) == key]
                change = e["psnr"] - base["psnr"]
                if precision != REFERENCE:
                    worst[precision] = min(worst.get(precision, 0.0), change)
                cells.append(f"{e['psnr']:.2f} / {e['ssim']:.3f} ({change:+.2f})")
            print(f"| {method} | {setting} | {precision} | " + " | ".join(cells) + " |")
    for precision, change in worst.items():
        print(f"Largest PSNR loss of {precision}: {-change:.2f} dB.")


if __name__ == "__main__":
    main()
