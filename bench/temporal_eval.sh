#!/usr/bin/env bash
# Reproduces bench/results/temporal.md (CPU, untrained weights); run from the repository root.
set -euo pipefail
PY=${PY:-.venv/bin/python}
E="$PY -m realtime.cli eval temporal"
V=../shared/data/video
STYLE=../shared/data/style/candy.jpg
OUT=bench/results/temporal
COMMON="--style $STYLE --untrained --resolution 640x360 --process-res 180 --threads 1"
mkdir -p "$OUT/final" "$OUT/sweep"
# 1. every strategy, controlled flicker σ=0.05, default TemporalConfig
for c in plane_pan_audio.mp4:40 pets_people_static_10s.avi:30 webcam_person_audio.avi:30; do
  clip=${c%%:*} n=${c##*:}
  $E "$V/$clip" $COMMON --frames "$n" --flicker 0.05 --json "$OUT/final/${clip%%.*}_s0.05.json"
  # the untrained model's own inconsistency (no controlled flicker)
  $E "$V/$clip" $COMMON --frames "$n" --flicker 0 --strategy off --no-ssim --json "$OUT/${clip%%.*}_s0.json"
  # 2. weight sweep for flow / flow+stats
  for cfg in w0.6_s0.8 w0.7_s0.7 w0.6_s0.6; do
    $E "$V/$clip" $COMMON --frames "$n" --flicker 0.05 --strategy flow,flow+stats --no-ssim \
      --temporal-config "bench/sweep/$cfg.yaml" --json "$OUT/sweep/${clip%%.*}_$cfg.json"
  done
done
# 3. keyframe mode: adaptive interval for 24 fps, and the engine on a worker thread
$E "$V/plane_pan_audio.mp4" $COMMON --frames 96 --strategy keyframe --target-fps 24 --no-ssim \
  --json "$OUT/plane_keyframe24.json"
$E "$V/plane_pan_audio.mp4" $COMMON --frames 96 --strategy keyframe --no-ssim \
  --temporal-config bench/temporal_keyframe_async.yaml --json "$OUT/plane_keyframe_async.json"
# 4. strategy overhead (CPU and wall ms) with a stand-in engine at 640x360 and 1280x720
"$PY" bench/temporal_overhead.py --frames 40 --json "$OUT/overhead.json"
