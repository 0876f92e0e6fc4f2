"""Temporal-consistency strategies behind one interface.

A strategy wraps the engine call for each frame of one stream::

    out = strategy.step(frame, engine, code, alpha)   # uint8 RGB in, uint8 RGB out

so it may stylize, smooth, warp or skip stylization (keyframe mode). ``reset()`` forgets the
past (scene cut, style switch, seek). ``make_strategy(name)`` builds one by name.

This first version has ``off`` and ``ema``; the temporal issue adds the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from models.errors import InputError
from models.style_code import StyleCode
from realtime.engine import StylizeEngine


class TemporalStrategy(Protocol):
    """Per-stream temporal smoothing around the engine."""

    name: str

    def reset(self) -> None: ...

    def step(
        self, frame: np.ndarray, engine: StylizeEngine, code: StyleCode, alpha: float
    ) -> np.ndarray: ...


class Off:
    """Frame by frame, no smoothing."""

    name = "off"

    def reset(self) -> None:
        pass

    def step(
        self, frame: np.ndarray, engine: StylizeEngine, code: StyleCode, alpha: float
    ) -> np.ndarray:
        return engine.process(frame, code, alpha)


@dataclass
class Ema:
    """Exponential moving average of the output: ``y = w·y_prev + (1 − w)·x`` (smears motion)."""

    weight: float = 0.6
    name: str = "ema"

    def __post_init__(self) -> None:
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        self._prev = None

    def step(
        self, frame: np.ndarray, engine: StylizeEngine, code: StyleCode, alpha: float
    ) -> np.ndarray:
        out = engine.process(frame, code, alpha).astype(np.float32)
        if self._prev is not None and self._prev.shape == out.shape:
            out = self.weight * self._prev + (1.0 - self.weight) * out
        self._prev = out
        return np.clip(out + 0.5, 0, 255).astype(np.uint8)


STRATEGIES = ("off", "ema")


def make_strategy(name: str) -> TemporalStrategy:
    """A fresh strategy by name; raises InputError for an unknown one."""
    if name == "off":
        return Off()
    if name == "ema":
        return Ema()
    raise InputError(f"unknown temporal strategy {name!r} (choose from {', '.join(STRATEGIES)})")
