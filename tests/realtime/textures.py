"""Synthetic test images for the flow, metrics and temporal tests."""

from __future__ import annotations

import cv2
import numpy as np


def textured(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth random RGB texture, uint8 (h, w, 3): enough structure for optical flow."""
    small = np.random.default_rng(seed).integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def shifted(img: np.ndarray, dx: int, dy: int = 0) -> np.ndarray:
    """``img`` moved by (dx, dy) pixels, wrapping around: a frame with known global motion."""
    return np.roll(np.roll(img, dy, axis=0), dx, axis=1)
