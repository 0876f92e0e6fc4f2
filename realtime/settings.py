"""Live settings as immutable snapshots, replaced atomically (hotkeys, web control, CLI).

The stylize thread reads ``store.get()`` once per frame and never sees a half-applied change;
controllers call ``store.update(field=value, ...)`` which swaps in a new snapshot.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LiveSettings:
    """One consistent set of live controls."""

    style_index: int = 0
    alpha: float = 1.0
    stylize: bool = True  # False shows the original frames
    preserve_color: bool = False
    temporal: str = "off"  # strategy name (realtime.temporal)
    temporal_enabled: bool = True
    show_hud: bool = True
    version: int = 0  # bumped on every update

    def __post_init__(self) -> None:
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.style_index < 0:
            raise ValueError(f"style_index must be >= 0, got {self.style_index}")


class SettingsStore:
    """Holds the current :class:`LiveSettings`; thread-safe, copy-on-write."""

    def __init__(self, initial: LiveSettings | None = None) -> None:
        self._lock = threading.Lock()
        self._current = initial or LiveSettings()
        self._listeners: list[Callable[[LiveSettings], None]] = []

    def get(self) -> LiveSettings:
        """The current snapshot (never mutated afterwards)."""
        return self._current

    def update(self, **changes: Any) -> LiveSettings:
        """Replace the snapshot with ``changes`` applied; raises ValueError on a bad value."""
        with self._lock:
            new = dataclasses.replace(self._current, **changes, version=self._current.version + 1)
            self._current = new
            listeners = list(self._listeners)
        for fn in listeners:
            fn(new)
        return new

    def modify(self, fn: Callable[[LiveSettings], dict[str, Any]]) -> LiveSettings:
        """Atomically derive changes from the current snapshot (e.g. alpha += 0.1)."""
        with self._lock:
            changes = fn(self._current)
            new = dataclasses.replace(self._current, **changes, version=self._current.version + 1)
            self._current = new
            listeners = list(self._listeners)
        for fn_ in listeners:
            fn_(new)
        return new

    def subscribe(self, fn: Callable[[LiveSettings], None]) -> None:
        """Call ``fn(snapshot)`` after every change (from the changing thread)."""
        with self._lock:
            self._listeners.append(fn)
