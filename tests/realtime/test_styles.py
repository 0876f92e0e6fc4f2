"""The style bank encodes a style once and reuses it from memory and disk."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.errors import InputError
from models.generator import CASTGenerator
from realtime.images import write_image
from realtime.styles import StyleBank, list_style_files, resize_shorter_side


def make_style(path: Path, seed: int) -> Path:
    write_image(path, np.random.default_rng(seed).integers(0, 256, (40, 60, 3), dtype=np.uint8))
    return path


def test_codes_are_cached_in_memory_and_on_disk(
    tiny_gen: CASTGenerator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = make_style(tmp_path / "s.png", 0)
    bank = StyleBank(tiny_gen, style_size=32, cache_dir=tmp_path / "cache")
    code = bank.code_for_file(s)
    assert code.size == (32, 48) and code.name == "s"
    assert len(list((tmp_path / "cache").glob("*.safetensors"))) == 1
    assert bank.code_for_file(s) is code  # memory hit

    fresh = StyleBank(tiny_gen, style_size=32, cache_dir=tmp_path / "cache")
    calls = []
    monkeypatch.setattr(fresh, "encode_rgb", lambda *a, **k: calls.append(1))
    from_disk = fresh.code_for_file(s)
    assert not calls and torch.equal(from_disk.mean, code.mean)


def test_changed_file_or_size_is_not_served_stale(tiny_gen: CASTGenerator, tmp_path: Path) -> None:
    s = make_style(tmp_path / "s.png", 1)
    bank = StyleBank(tiny_gen, style_size=32, cache_dir=tmp_path / "cache")
    first = bank.code_for_file(s)
    make_style(s, 2)
    assert not torch.equal(bank.code_for_file(s).mean, first.mean)
    other = StyleBank(tiny_gen, style_size=16, cache_dir=tmp_path / "cache")
    assert other.code_for_file(s).size == (16, 24)


def test_corrupt_cache_entry_is_recomputed(tiny_gen: CASTGenerator, tmp_path: Path) -> None:
    s = make_style(tmp_path / "s.png", 3)
    StyleBank(tiny_gen, 32, tmp_path / "cache").code_for_file(s)
    for f in (tmp_path / "cache").glob("*.safetensors"):
        f.write_bytes(b"garbage")
    code = StyleBank(tiny_gen, 32, tmp_path / "cache").code_for_file(s)
    assert code.mean.shape == (1, 512, 1, 1)


def test_folders_expand_and_errors_are_clear(tmp_path: Path) -> None:
    d = tmp_path / "styles"
    d.mkdir()
    make_style(d / "b.png", 0)
    make_style(d / "a.jpg", 1)
    (d / "notes.txt").write_text("x")
    assert [p.name for p in list_style_files([d])] == ["a.jpg", "b.png"]
    with pytest.raises(InputError, match="style file not found"):
        list_style_files([tmp_path / "missing.jpg"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no images"):
        list_style_files([tmp_path / "empty"])


def test_resize_shorter_side() -> None:
    img = np.zeros((100, 50, 3), np.uint8)
    assert resize_shorter_side(img, 25).shape == (50, 25, 3)
    assert resize_shorter_side(img, 0) is img
