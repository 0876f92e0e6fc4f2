"""The heads-up display drawn over the window: fps, latency, per-stage ms, style, drops.

Drawn with ``cv2.putText`` (Qt under Xvfb has no fonts) onto a copy of the RGB frame.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import cv2
import numpy as np

from realtime.settings import LiveSettings


def hud_lines(stats: Mapping[str, Any], settings: LiveSettings, style_name: str) -> list[str]:
    """The HUD text for one stats snapshot and settings snapshot."""
    stages = stats.get("stage_ms", {})
    stage_text = "  ".join(f"{k} {v:.1f}" for k, v in stages.items())
    mode = "original" if not settings.stylize else f"{style_name}  strength {settings.alpha:.1f}"
    temporal = settings.temporal if settings.temporal_enabled else "off"
    return [
        f"{stats.get('fps', 0.0):5.1f} fps   latency p50 {stats.get('latency_ms_p50', 0.0):.0f} ms"
        f"  p95 {stats.get('latency_ms_p95', 0.0):.0f} ms   dropped {stats.get('dropped', 0)}",
        f"ms: {stage_text}",
        f"style: {mode}   temporal: {temporal}",
        "1-9 n/p style  +/- strength  space orig  t temporal  s shot  h hud  q quit",
    ]


def draw_hud(image: np.ndarray, lines: list[str]) -> np.ndarray:
    """A copy of ``image`` (uint8 RGB) with ``lines`` on a darkened box at the top left."""
    out = image.copy()
    if not lines:
        return out
    h, w = out.shape[:2]
    scale = float(np.clip(w / 1600, 0.35, 0.7))
    step = int(22 * scale / 0.5)
    box_h = min(h, step * len(lines) + 8)
    box_w = min(w, int(max(len(t) for t in lines) * 9.5 * scale / 0.5 * 0.55) + 12)
    out[:box_h, :box_w] = (out[:box_h, :box_w].astype(np.uint16) * 2 // 5).astype(np.uint8)
    for i, text in enumerate(lines):
        cv2.putText(
            out,
            text,
            (6, step * (i + 1)),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 120),
            1,
            cv2.LINE_AA,
        )
    return out
