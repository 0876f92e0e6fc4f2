"""Anti-aliased PatchGAN: reference layout, blur-pool filter, output size."""

from __future__ import annotations

import json

import torch
import torch.nn.functional as F

from models.discriminator import Downsample, NLayerDiscriminator, xavier_init_
from tests.conftest import shared_path


def test_state_dict_matches_reference() -> None:
    shapes = json.loads(shared_path("reference", "state_dict_shapes.json").read_text())
    d = NLayerDiscriminator()
    got = {k: list(v.shape) for k, v in d.state_dict().items()}
    assert got == shapes["train:netD_A"] == shapes["train:netD_B"]
    assert sum(p.numel() for p in d.parameters()) == shapes["train:netD_A:num_params"]


def test_blur_pool_filter_and_result() -> None:
    down = Downsample(2)
    expected = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16
    torch.testing.assert_close(down.filt[1, 0], expected)
    x = torch.arange(2 * 4 * 4, dtype=torch.float32).view(1, 2, 4, 4)
    y = down(x)
    assert y.shape == (1, 2, 2, 2)
    # top-left output = blur of the reflect-padded 3×3 window centred on x[0, 0]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    assert torch.isclose(y[0, 0, 0, 0], (padded[0, 0, :3, :3] * expected).sum())


def test_patch_map_size() -> None:
    d = NLayerDiscriminator()
    assert d(torch.zeros(1, 3, 64, 64)).shape == (1, 1, 6, 6)  # 256² gives 30×30


def test_xavier_init_keeps_filters() -> None:
    d = NLayerDiscriminator()
    filt = d.model[2].filt.clone()
    xavier_init_(d, 0.02, torch.Generator().manual_seed(0))
    torch.testing.assert_close(d.model[2].filt, filt)
    assert d.model[0].bias.abs().max() == 0
    assert d.model[0].weight.std() < 0.01  # gain 0.02 → tiny weights
