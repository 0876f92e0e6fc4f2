"""Helpers for trainer tests: tiny CPU configs and synthetic image folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from models.training.config import TrainConfig
from realtime.config import load_config

#: smallest config the architecture allows: 32 px crops, 64-d codes, an 8-entry queue.
TINY: dict[str, Any] = {
    "data.crop_size": 32,
    "data.load_size": 36,
    "data.num_workers": 0,
    "data.pin_memory": False,
    "loss.code_dim": 64,
    "loss.queue_size": 8,
    "optim.schedule_unit": "step",
    "optim.n_constant": 100,
    "optim.n_decay": 100,
    "device": "cpu",
    "log_every": 1,
    "image_every": 1000,
    "save_every": 1000,
}


def tiny_config(**overrides: Any) -> TrainConfig:
    return load_config(TrainConfig, None, {**TINY, **overrides})


def make_folder(root: Path, count: int, seed: int, size: tuple[int, int] = (48, 40)) -> Path:
    """``count`` random-noise-plus-gradient PNGs (w×h = size) in ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    w, h = size
    for i in range(count):
        base = np.linspace(0, 255, w, dtype=np.float64)[None, :, None] * rng.uniform(0.2, 1, 3)
        img = np.clip(base + rng.normal(0, 40, (h, w, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(root / f"img_{i:02d}.png")
    return root
