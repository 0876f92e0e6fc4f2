"""CAST's shared encoder ``AE``: the AdaIN VGG-19 layout up to relu4_1, in named stages.

Module names and indices mirror the reference (``enc_1.0`` … ``enc_4.11``) so official
``latest_net_AE.pth`` files load without any key mapping.
"""

from __future__ import annotations

from torch import Tensor, nn

STAGES: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")
STAGE_CHANNELS: dict[str, int] = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}


def _conv3(cin: int, cout: int) -> list[nn.Module]:
    """Reflection pad 1 + 3×3 conv (no padding) + ReLU, as in the reference."""
    return [nn.ReflectionPad2d(1), nn.Conv2d(cin, cout, 3), nn.ReLU()]


def _pool() -> nn.Module:
    return nn.MaxPool2d(2, 2, 0, ceil_mode=True)


class Encoder(nn.Module):
    """Encoder from an RGB image in [-1, 1] (B, 3, H, W) to relu4_1 (B, 512, ⌈H/8⌉, ⌈W/8⌉)."""

    def __init__(self) -> None:
        super().__init__()
        # enc_1 = [conv1x1, pad, conv1_1, relu] -> relu1_1
        self.enc_1 = nn.Sequential(nn.Conv2d(3, 3, 1), *_conv3(3, 64))
        # enc_2 = [pad conv1_2 relu, pool, pad conv2_1 relu] -> relu2_1
        self.enc_2 = nn.Sequential(*_conv3(64, 64), _pool(), *_conv3(64, 128))
        # enc_3 = [pad conv2_2 relu, pool, pad conv3_1 relu] -> relu3_1
        self.enc_3 = nn.Sequential(*_conv3(128, 128), _pool(), *_conv3(128, 256))
        # enc_4 = [conv3_2..3_4, pool, pad conv4_1 relu] -> relu4_1
        self.enc_4 = nn.Sequential(
            *_conv3(256, 256), *_conv3(256, 256), *_conv3(256, 256), _pool(), *_conv3(256, 512)
        )

    def stages(self) -> list[tuple[str, nn.Sequential]]:
        """The four stages with their output names, in order."""
        return list(zip(STAGES, (self.enc_1, self.enc_2, self.enc_3, self.enc_4)))

    def forward(self, x: Tensor) -> Tensor:
        """relu4_1 features of ``x``."""
        return self.enc_4(self.enc_3(self.enc_2(self.enc_1(x))))

    def features(self, x: Tensor) -> dict[str, Tensor]:
        """Every stage's output by name (used by training and analysis)."""
        out: dict[str, Tensor] = {}
        for name, stage in self.stages():
            x = stage(x)
            out[name] = x
        return out
