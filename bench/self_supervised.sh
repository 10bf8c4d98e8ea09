#!/usr/bin/env bash
# Held-out quality of Noise2Noise and Noise2Self against supervised training, on synthetic
# data whose clean images training never reads (they are used by evaluate only).
#
#   bash bench/self_supervised.sh [OUT]     # OUT defaults to runs/self_supervised
#
# About 15 minutes on 2 CPU cores. Prints the evaluate line of every run; the README's
# "What the self-supervised modes achieve" table is made from them.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/self_supervised}
mkdir -p "$out"
quiet() { "$@" > "$out/log.txt" 2>&1 || { cat "$out/log.txt"; exit 1; }; }
evaluate() { echo "$1: $(python -m tomogan_tf.evaluate "${@:2}" 2>/dev/null | tail -1)"; }

# CT slices: the same noisy slices (same seed) with clean targets, or with a second,
# independent noise draw instead; the same budget (600 iterations, no critic) for both.
slices="--psz 64 --mbsz 8 --maxiter 600 --val_every 100 --vgg_weights none --ladv 0"
quiet python -m data_tools.make_ct_dataset --out "$out/ct.h5" --overwrite
quiet python -m data_tools.make_ct_dataset --out "$out/ct_pairs.h5" --kind pairs --overwrite
quiet python -m tomogan_tf.train --h5 "$out/ct.h5" --logdir "$out/supervised" $slices
quiet python -m tomogan_tf.train --h5 "$out/ct_pairs.h5" --logdir "$out/n2n" --mode n2n $slices
quiet python -m tomogan_tf.train --h5 "$out/ct_pairs.h5" --logdir "$out/n2s_ct" --mode n2s $slices
for run in supervised n2n n2s_ct; do
  evaluate "CT slices, $run" --model "$out/$run" --h5 "$out/ct_pairs.h5"
done

# Raw projections (Data Exchange, Poisson noise independent per pixel): Noise2Self on one
# scan; scored on a repeat scan of the same sample (new noise) and on scans of others.
quiet python -m data_tools.make_projection_dataset --out "$out/scan.h5" \
  --pair "$out/scan_repeat.h5" --rows 64 --overwrite
kind_of() { python -c "import h5py; print(h5py.File('$1').attrs['phantom_kind'])"; }
echo "projections: training scan of a $(kind_of "$out/scan.h5") phantom"
for seed in 1 2 3 4; do
  quiet python -m data_tools.make_projection_dataset --out "$out/other_$seed.h5" --rows 64 \
    --seed "$seed" --overwrite
done
quiet python -m tomogan_tf.train --h5 "$out/scan.h5" --layout dxchange --mode n2s \
  --logdir "$out/n2s_dx" --psz 64 --mbsz 8 --maxiter 1500 --val_every 250 --lr_g 5e-4
evaluate "projections, repeat scan, direct" --model "$out/n2s_dx" --h5 "$out/scan_repeat.h5"
evaluate "projections, repeat scan, jinv" --model "$out/n2s_dx" --h5 "$out/scan_repeat.h5" \
  --inference jinv
for seed in 1 2 3 4; do
  evaluate "projections, other sample (seed $seed, $(kind_of "$out/other_$seed.h5"))" --model "$out/n2s_dx" \
    --h5 "$out/other_$seed.h5"
done
