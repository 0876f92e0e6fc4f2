"""CAST's multi-layer style projector (MSP): a BN-VGG style extractor ``D`` and projector MLPs ``P_style``.

Used only in training. Module names mirror the reference (``enc_1.0`` … ``enc_6.21``,
``conv1x1_0..5``, ``projector0..5``) so its ``latest_net_D.pth`` / ``latest_net_P_style.pth``
state dicts load without key mapping.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

#: the reference ``make_layers`` config (the leading 3 is a learned 3→3 input adapter).
STYLE_VGG_CFG: tuple[int | str, ...] = (
    3, 64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
    512, 512, 512, 512, "M", 512, 512, "M", 512, 512, "M",
)  # fmt: skip
#: layer ranges of the 70-layer Sequential that form enc_1..enc_6 (relu1_1 … relu5_1, rest).
STAGE_SLICES: tuple[tuple[int, int], ...] = (
    (0, 6),
    (6, 13),
    (13, 20),
    (20, 33),
    (33, 46),
    (46, 70),
)
#: channels of each stage output (and of each pooled head's code).
HEAD_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512, 512)
CODE_DIM = 2048


def make_style_vgg(cfg: Sequence[int | str] = STYLE_VGG_CFG) -> list[nn.Module]:
    """conv3×3 (zero pad) + BN + ReLU per number, MaxPool2d(2, 2) per ``M``: 70 layers."""
    layers: list[nn.Module] = []
    cin = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            cout = int(v)
            layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
            cin = cout
    return layers


def pooled_head(feat: Tensor, conv1x1: nn.Module) -> Tensor:
    """(N, C, H, W) → ReLU(conv1x1(cat[GAP, GMP])) of shape (N, C', 1, 1)."""
    gap = F.adaptive_avg_pool2d(feat, 1)  # (N, C, 1, 1)
    gmp = F.adaptive_max_pool2d(feat, 1)  # (N, C, 1, 1)
    return F.relu(conv1x1(torch.cat([gap, gmp], 1)))  # (N, C', 1, 1)


class StyleExtractor(nn.Module):
    """BN-VGG backbone (enc_1..enc_6) with a pooled 1×1-conv head per stage (the reference ``netD``)."""

    def __init__(self) -> None:
        super().__init__()
        layers = make_style_vgg()
        for i, (a, b) in enumerate(STAGE_SLICES):
            setattr(self, f"enc_{i + 1}", nn.Sequential(*layers[a:b]))
        for i, c in enumerate(HEAD_CHANNELS):
            setattr(self, f"conv1x1_{i}", nn.Conv2d(2 * c, c, 1))

    def forward(self, x: Tensor, layers: Sequence[int], full: bool = False) -> list[Tensor]:
        """Per-layer codes (N, C_l, 1, 1) for each index in ``layers`` (0 = relu1_1 … 5).

        Only the stages up to the deepest requested layer run; ``full=True`` runs all six
        like the reference does (same result, more work; used by the reference benchmark).
        """
        last = len(STAGE_SLICES) if full else max(layers) + 1
        feats: list[Tensor] = []
        for i in range(last):
            x = getattr(self, f"enc_{i + 1}")(x)
            feats.append(x)
        return [pooled_head(feats[i], getattr(self, f"conv1x1_{i}")) for i in layers]


class Projector(nn.Module):
    """One MLP per layer: Linear(C,1024)-ReLU-Linear(1024,2048)-ReLU-Linear(2048,2048), then L2-normalise."""

    def __init__(self, code_dim: int = CODE_DIM) -> None:
        super().__init__()
        for i, c in enumerate(HEAD_CHANNELS):
            mlp = nn.Sequential(
                nn.Linear(c, 1024),
                nn.ReLU(),
                nn.Linear(1024, code_dim),
                nn.ReLU(),
                nn.Linear(code_dim, code_dim),
            )
            setattr(self, f"projector{i}", mlp)

    def forward(self, codes: Sequence[Tensor], layers: Sequence[int]) -> list[Tensor]:
        """Unit style codes (N, code_dim), fp32, one per layer (``codes[j]`` belongs to ``layers[j]``)."""
        out = []
        for code, i in zip(codes, layers):
            z = getattr(self, f"projector{i}")(code.flatten(1))  # (N, code_dim)
            out.append(F.normalize(z if z.dtype == torch.float64 else z.float(), dim=1))
        return out


def normal_init_(
    module: nn.Module, gain: float = 0.02, generator: torch.Generator | None = None
) -> None:
    """The reference ``init_net(.., 'normal', gain)``: conv/linear N(0, gain), BN weight N(1, gain), zero biases."""
    for m in module.modules():
        with torch.no_grad():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.normal_(0.0, gain, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.normal_(1.0, gain, generator=generator)
                m.bias.zero_()
