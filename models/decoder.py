"""CAST decoders ``Dec_A`` (photo domain) and ``Dec_B`` (art domain): the AdaIN decoder mirror.

Indices inside ``decoder`` mirror the reference (``decoder.1`` … ``decoder.28``).
"""

from __future__ import annotations

from torch import Tensor, nn


def _conv3(cin: int, cout: int, relu: bool = True) -> list[nn.Module]:
    layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3)]
    if relu:
        layers.append(nn.ReLU())
    return layers


def _up() -> nn.Module:
    return nn.Upsample(scale_factor=2, mode="nearest")


class Decoder(nn.Module):
    """relu4_1-sized features (B, 512, h, w) → RGB (B, 3, 8h, 8w), unbounded (no output activation)."""

    def __init__(self) -> None:
        super().__init__()
        self.decoder = nn.Sequential(
            *_conv3(512, 256),  # 0-2
            _up(),  # 3
            *_conv3(256, 256),  # 4-6
            *_conv3(256, 256),  # 7-9
            *_conv3(256, 256),  # 10-12
            *_conv3(256, 128),  # 13-15
            _up(),  # 16
            *_conv3(128, 128),  # 17-19
            *_conv3(128, 64),  # 20-22
            _up(),  # 23
            *_conv3(64, 64),  # 24-26
            *_conv3(64, 3, relu=False),  # 27-28
        )

    def forward(self, feat: Tensor) -> Tensor:
        return self.decoder(feat)
