"""Hotkeys → settings snapshots, quit and screenshot callbacks."""

from __future__ import annotations

from realtime.controls import ESC, Controls
from realtime.settings import LiveSettings, SettingsStore


def make(n: int = 3) -> tuple[Controls, SettingsStore, list[str]]:
    store = SettingsStore(LiveSettings())
    calls: list[str] = []
    c = Controls(store, list(range(n)), lambda: calls.append("quit"), lambda: calls.append("shot"))
    return c, store, calls


def test_style_keys() -> None:
    c, store, _ = make(3)
    c.handle_key(ord("3"))
    assert store.get().style_index == 2
    assert c.handle_key(ord("9")) is None and store.get().style_index == 2  # no 9th style
    c.handle_key(ord("n"))
    assert store.get().style_index == 0  # wraps
    c.handle_key(ord("p"))
    assert store.get().style_index == 2


def test_strength_toggles_and_callbacks() -> None:
    c, store, calls = make()
    c.handle_key(ord("-"))
    c.handle_key(ord("-"))
    assert store.get().alpha == 0.8
    for _ in range(5):
        c.handle_key(ord("+"))
    assert store.get().alpha == 1.0  # clamped
    c.handle_key(ord(" "))
    assert store.get().stylize is False
    c.handle_key(ord("t"))
    assert store.get().temporal_enabled is False
    c.handle_key(ord("h"))
    assert store.get().show_hud is False
    c.handle_key(ord("s"))
    c.handle_key(ESC)
    c.handle_key(ord("q"))
    assert calls == ["shot", "quit", "quit"]
    assert c.handle_key(-1) is None and c.handle_key(ord("x")) is None


def test_extended_key_codes_are_masked() -> None:
    c, store, _ = make()
    c.handle_key(0x100000 | ord("2"))  # waitKeyEx with a modifier bit
    assert store.get().style_index == 1
