"""Style codes: computed once, saved and loaded, mixed, and refused when they don't fit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models import StyleCode, StyleCodeError, interpolate_codes
from models.generator import CASTGenerator


def style(seed: int, size: int = 32) -> torch.Tensor:
    return torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_code_has_relu4_1_stats_and_provenance(tiny_gen: CASTGenerator) -> None:
    code = tiny_gen.style_code(style(0, 40), source="abc", name="s")
    assert code.mean.shape == code.std.shape == (1, 512, 1, 1)
    assert code.size == (40, 40) and code.checkpoint_id == tiny_gen.checkpoint_id
    assert not code.mean.requires_grad  # made under no_grad, reusable everywhere


def test_reusing_a_code_equals_encoding_the_style_every_time(tiny_gen: CASTGenerator) -> None:
    s, c = style(1), style(2)
    code = tiny_gen.style_code(s)
    with torch.no_grad():
        direct = tiny_gen.dec_b(tiny_gen.transform(tiny_gen.encode(c), tiny_gen.style_code(s)))
        assert torch.equal(tiny_gen.stylize(c, code), direct)


def test_save_load_round_trip(tiny_gen: CASTGenerator, tmp_path: Path) -> None:
    code = tiny_gen.style_code(style(3), source="deadbeef", name="candy")
    code.save(tmp_path / "c.safetensors")
    back = StyleCode.load(tmp_path / "c.safetensors")
    assert torch.equal(back.mean, code.mean) and torch.equal(back.std, code.std)
    assert (back.source, back.size, back.checkpoint_id, back.name) == (
        code.source,
        code.size,
        code.checkpoint_id,
        "candy",
    )


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(StyleCodeError, match="not found"):
        StyleCode.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk").write_bytes(b"junk")
    with pytest.raises(StyleCodeError, match="not a readable style code"):
        StyleCode.load(tmp_path / "junk")


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(StyleCodeError):
        StyleCode(mean=torch.zeros(1, 512), std=torch.zeros(1, 512))


def test_interpolation_mixes_stats_and_checks_checkpoints(tiny_gen: CASTGenerator) -> None:
    a, b = tiny_gen.style_code(style(4), name="a"), tiny_gen.style_code(style(5), name="b")
    mix = interpolate_codes([a, b], [3, 1])
    torch.testing.assert_close(mix.mean, 0.75 * a.mean + 0.25 * b.mean)
    torch.testing.assert_close(mix.std, 0.75 * a.std + 0.25 * b.std)
    assert mix.name == "a+b"
    other = StyleCode(mean=b.mean, std=b.std, checkpoint_id="other")
    with pytest.raises(StyleCodeError, match="different checkpoints"):
        interpolate_codes([a, other], [1, 1])
    with pytest.raises(StyleCodeError):
        interpolate_codes([a, b], [1])


def test_alpha_zero_reconstructs_content_features(tiny_gen: CASTGenerator) -> None:
    c = style(6)
    code = tiny_gen.style_code(style(7))
    with torch.no_grad():
        out = tiny_gen.stylize(c, code, alpha=0.0)
        assert torch.equal(out, tiny_gen.dec_b(tiny_gen.encode(c)))
