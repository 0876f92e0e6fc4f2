"""Hotkeys → settings changes (``SettingsStore``), quit and screenshot callbacks.

Keys: ``1``–``9`` style N, ``n``/``p`` next/previous style, ``+``/``-`` strength ±0.1,
space original/stylized, ``t`` temporal smoothing on/off, ``s`` screenshot, ``h`` HUD,
``q``/Esc quit. The window sink passes every key it sees to :meth:`Controls.handle_key`.
"""

from __future__ import annotations

from collections.abc import Callable, Sized

from realtime.settings import LiveSettings, SettingsStore

ESC = 27
ALPHA_STEP = 0.1


class Controls:
    """Maps key codes to actions; ``styles`` is consulted for its current length."""

    def __init__(
        self,
        store: SettingsStore,
        styles: Sized,
        on_quit: Callable[[], None],
        on_screenshot: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.styles = styles
        self.on_quit = on_quit
        self.on_screenshot = on_screenshot

    def _select(self, index: int) -> None:
        n = len(self.styles)
        if n:
            self.store.update(style_index=index % n)

    def handle_key(self, code: int) -> str | None:
        """Apply the key ``code`` (from ``cv2.waitKeyEx``); returns what it did, or None."""
        if code < 0:
            return None
        key = code & 0xFF
        ch = chr(key) if 32 <= key < 127 else ""
        s = self.store.get()
        n = len(self.styles)
        if key == ESC or ch in ("q", "Q"):
            self.on_quit()
            return "quit"
        if ch.isdigit() and ch != "0":
            index = int(ch) - 1
            if index < n:
                self.store.update(style_index=index)
                return f"style {index + 1}"
            return None
        if ch == "n":
            self._select(s.style_index + 1)
            return "next style"
        if ch == "p":
            self._select(s.style_index - 1)
            return "previous style"
        if ch in ("+", "="):
            self.store.modify(lambda c: {"alpha": _step(c, +ALPHA_STEP)})
            return "stronger"
        if ch in ("-", "_"):
            self.store.modify(lambda c: {"alpha": _step(c, -ALPHA_STEP)})
            return "weaker"
        if ch == " ":
            self.store.modify(lambda c: {"stylize": not c.stylize})
            return "toggle stylize"
        if ch == "t":
            self.store.modify(lambda c: {"temporal_enabled": not c.temporal_enabled})
            return "toggle temporal"
        if ch == "h":
            self.store.modify(lambda c: {"show_hud": not c.show_hud})
            return "toggle hud"
        if ch == "s" and self.on_screenshot is not None:
            self.on_screenshot()
            return "screenshot"
        return None


def _step(settings: LiveSettings, delta: float) -> float:
    return round(min(1.0, max(0.0, settings.alpha + delta)), 3)
