"""YAML presets map one-to-one onto frozen dataclasses; unknown keys and bad types fail."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from models.errors import InputError
from realtime.config import load_config, to_dict


@dataclass(frozen=True)
class Inner:
    size: int = 256
    mode: Literal["a", "b"] = "a"


@dataclass(frozen=True)
class Outer:
    rate: float = 1e-4
    name: str | None = None
    path: Path = Path("x")
    sizes: tuple[int, ...] = (1, 2)
    inner: Inner = field(default_factory=Inner)


def test_yaml_plus_overrides(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("rate: 2\ninner:\n  size: 64\nsizes: [3]\n")
    cfg = load_config(Outer, tmp_path / "c.yaml", {"inner.mode": "b", "name": "run"})
    assert cfg == Outer(rate=2.0, name="run", sizes=(3,), inner=Inner(size=64, mode="b"))
    assert to_dict(cfg)["path"] == "x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ratee: 1\n", "unknown key"),
        ("inner:\n  sise: 1\n", "inner: unknown key"),
        ("rate: fast\n", "rate: expected a number"),
        ("inner:\n  mode: c\n", "must be one of a, b"),
        ("- 1\n", "top level must be a mapping"),
        ("rate: [\n", "invalid YAML"),
    ],
)
def test_bad_configs_are_refused(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(InputError, match=message):
        load_config(Outer, tmp_path / "c.yaml")


def test_missing_file() -> None:
    with pytest.raises(InputError, match="config file not found"):
        load_config(Outer, Path("/nonexistent/c.yaml"))
