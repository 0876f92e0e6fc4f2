"""MSP style extractor + projector: reference state-dict layout, shapes, unit codes."""

from __future__ import annotations

import json

import pytest
import torch

from models.projector import HEAD_CHANNELS, Projector, StyleExtractor, normal_init_, pooled_head
from tests.conftest import shared_path


@pytest.fixture(scope="module")
def shapes() -> dict:
    return json.loads(shared_path("reference", "state_dict_shapes.json").read_text())


def _shapes(module: torch.nn.Module) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in module.state_dict().items()}


def test_extractor_state_dict_matches_reference(shapes: dict) -> None:
    assert _shapes(StyleExtractor()) == shapes["train:netD"]
    assert sum(p.numel() for p in StyleExtractor().parameters()) == shapes["train:netD:num_params"]


def test_projector_state_dict_matches_reference(shapes: dict) -> None:
    assert _shapes(Projector()) == shapes["train:netP_style"]
    assert sum(p.numel() for p in Projector().parameters()) == shapes["train:netP_style:num_params"]


def test_codes_are_unit_vectors_per_layer() -> None:
    torch.manual_seed(0)
    d, p = StyleExtractor(), Projector(code_dim=64)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    feats = d(x, (0, 1, 2, 3))
    assert [tuple(f.shape) for f in feats] == [(2, c, 1, 1) for c in HEAD_CHANNELS[:4]]
    assert all((f >= 0).all() for f in feats)  # ReLU heads
    codes = p(feats, (0, 1, 2, 3))
    for c in codes:
        assert c.shape == (2, 64)
        torch.testing.assert_close(c.norm(dim=1), torch.ones(2))


def test_partial_stages_equal_full_reference_pass() -> None:
    torch.manual_seed(1)
    d = StyleExtractor()
    x = torch.rand(2, 3, 128, 128)  # the full pass needs >= 128 px (enc_6 pools to 1×1)
    for a, b in zip(d(x, (0, 2)), d(x, (0, 2), full=True)):
        torch.testing.assert_close(a, b)


def test_pooled_head_is_relu_conv_of_avg_and_max() -> None:
    feat = torch.tensor([[[[1.0, 3.0], [5.0, -1.0]]]])  # (1, 1, 2, 2): mean 2, max 5
    conv = torch.nn.Conv2d(2, 1, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[[1.0]], [[-1.0]]]]))
        conv.bias.fill_(4.0)
    assert pooled_head(feat, conv).item() == pytest.approx(max(0.0, 2 - 5 + 4))
    with torch.no_grad():
        conv.bias.fill_(0.0)
    assert pooled_head(feat, conv).item() == 0.0  # ReLU


def test_normal_init_matches_reference_rule() -> None:
    d = StyleExtractor()
    normal_init_(d, 0.02, torch.Generator().manual_seed(0))
    conv, bn = d.enc_2[4], d.enc_2[5]
    assert abs(conv.weight.std().item() - 0.02) < 0.002 and conv.bias.abs().max() == 0
    assert abs(bn.weight.mean().item() - 1.0) < 0.01 and bn.bias.abs().max() == 0
