#!/usr/bin/env bash
# Reproduces bench/results/temporal.md (CPU, untrained weights). Usage: bench/temporal_eval.sh [FRAMES]
set -euo pipefail
PY=${PY:-/work/main/.venv/bin/python}
N=${1:-40}
OUT=bench/results/temporal
STYLE=../shared/data/style/candy.jpg
mkdir -p "$OUT"
for clip in plane_pan_audio.mp4 pets_people_static_10s.avi webcam_person_audio.avi; do
  for sigma in 0.05 0; do
    "$PY" -m realtime.cli eval temporal "../shared/data/video/$clip" --style "$STYLE" --untrained \
      --resolution 640x360 --process-res 180 --frames "$N" --flicker "$sigma" \
      --json "$OUT/${clip%%.*}_s${sigma}.json"
  done
done
# overhead at 1280x720 (no SSIM, fewer frames)
"$PY" -m realtime.cli eval temporal ../shared/data/video/plane_pan_audio.mp4 --style "$STYLE" --untrained \
  --resolution 1280x720 --process-res 180 --frames 20 --flicker 0.05 --no-ssim --json "$OUT/plane_720p.json"
# keyframe mode holding 24 fps (real engine calls, processing shorter side 180)
"$PY" -m realtime.cli eval temporal ../shared/data/video/plane_pan_audio.mp4 --style "$STYLE" --untrained \
  --resolution 640x360 --process-res 180 --frames 120 --strategy keyframe --target-fps 24 --no-ssim \
  --json "$OUT/plane_keyframe24.json"
