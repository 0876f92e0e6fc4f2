#!/usr/bin/env bash
# Reproduces bench/results/temporal.md (CPU, untrained weights).
# Usage: bench/temporal_eval.sh [FRAMES] [CLIPS...]   (default 30 frames, all shared clips)
set -euo pipefail
PY=${PY:-/work/main/.venv/bin/python}
N=${1:-30}
shift || true
CLIPS=("$@")
[ ${#CLIPS[@]} -gt 0 ] || CLIPS=(plane_pan_audio.mp4 pets_people_static_10s.avi webcam_person_audio.avi)
OUT=bench/results/temporal
STYLE=../shared/data/style/candy.jpg
mkdir -p "$OUT"
for clip in "${CLIPS[@]}"; do
  "$PY" -m realtime.cli eval temporal "../shared/data/video/$clip" --style "$STYLE" --untrained \
    --resolution 640x360 --process-res 180 --frames "$N" --flicker 0.05 --threads 1 \
    --json "$OUT/${clip%%.*}_s0.05.json"
done
# keyframe mode holding 24 fps (real engine calls, processing shorter side 180)
"$PY" -m realtime.cli eval temporal ../shared/data/video/plane_pan_audio.mp4 --style "$STYLE" --untrained \
  --resolution 640x360 --process-res 180 --frames 96 --strategy keyframe --target-fps 24 --no-ssim \
  --threads 1 --json "$OUT/plane_keyframe24.json"
# strategy overhead with a stand-in engine at 640x360 and 1280x720
"$PY" bench/temporal_overhead.py --frames 60 --json "$OUT/overhead.json"
# keyframe mode with the engine on a worker thread (every frame propagated from the newest keyframe)
"$PY" -m realtime.cli eval temporal ../shared/data/video/plane_pan_audio.mp4 --style "$STYLE" --untrained \
  --resolution 640x360 --process-res 180 --frames 96 --strategy keyframe --no-ssim --threads 1 \
  --temporal-config bench/temporal_keyframe_async.yaml --json "$OUT/plane_keyframe_async.json"
