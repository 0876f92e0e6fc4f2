"""CUT-style anti-aliased PatchGAN (the reference ``D_A`` / ``D_B``): conv → blur-pool stride 2.

Indices inside ``model`` mirror the reference (``model.0`` … ``model.14``, ``filt`` buffers at
2, 6, 10) so its ``latest_net_D_A.pth`` / ``latest_net_D_B.pth`` load without key mapping.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def blur_filter(channels: int) -> Tensor:
    """Depthwise [1,2,1]ᵀ[1,2,1]/16 filter, shape (C, 1, 3, 3)."""
    a = torch.tensor([1.0, 2.0, 1.0])
    f = a[:, None] * a[None, :]
    return (f / f.sum()).expand(channels, 1, 3, 3).clone()


class Downsample(nn.Module):
    """BlurPool: reflect pad 1, depthwise 3×3 binomial blur, stride 2 (buffer ``filt``)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.register_buffer("filt", blur_filter(channels))

    def forward(self, x: Tensor) -> Tensor:
        filt: Tensor = self.filt  # type: ignore[assignment]
        x = F.pad(x, (1, 1, 1, 1), mode="reflect")
        return F.conv2d(x, filt.to(x.dtype), stride=2, groups=self.channels)


class NLayerDiscriminator(nn.Module):
    """PatchGAN with ``n_layers`` blur-pooled stages: (N, 3, 256, 256) → (N, 1, 30, 30) logits."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, 4, 1, 1),
            nn.LeakyReLU(0.2),
            Downsample(ndf),
        ]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=True),
                nn.InstanceNorm2d(ndf * mult, affine=False),
                nn.LeakyReLU(0.2),
                Downsample(ndf * mult),
            ]
        prev, mult = mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(ndf * prev, ndf * mult, 4, 1, 1, bias=True),
            nn.InstanceNorm2d(ndf * mult, affine=False),
            nn.LeakyReLU(0.2),
            nn.Conv2d(ndf * mult, 1, 4, 1, 1),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def xavier_init_(
    module: nn.Module, gain: float = 0.02, generator: torch.Generator | None = None
) -> None:
    """The reference ``init_net(.., 'xavier', gain)``: xavier-normal conv weights, zero biases (filt untouched)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            with torch.no_grad():
                nn.init.xavier_normal_(m.weight, gain=gain, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
