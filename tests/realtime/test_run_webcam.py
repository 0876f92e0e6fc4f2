"""``run_webcam.py``: webcam 0 → window unless the user says otherwise."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_webcam_defaults_and_overrides() -> None:
    spec = importlib.util.spec_from_file_location("run_webcam", ROOT / "run_webcam.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.webcam_argv(["--style", "s.jpg"]) == [
        "live", "--style", "s.jpg", "--source", "0", "--sink", "window",
    ]  # fmt: skip
    assert mod.webcam_argv(["--source=test", "--sink", "null"]) == [
        "live", "--source=test", "--sink", "null",
    ]  # fmt: skip
