"""The CAST test-time generator: shared encoder, AdaIN at relu4_1, art decoder Dec_B.

``Dec_A`` (photo decoder) is optional at inference and used by training and the cycle.
"""

from __future__ import annotations

import hashlib
import math

import torch
from torch import Tensor, nn

from models import functional as Fn
from models.decoder import Decoder
from models.encoder import Encoder
from models.style_code import StyleCode

ARCHITECTURE = "cast-generator-v1"


class CASTGenerator(nn.Module):
    """Encoder + Dec_B (+ optional Dec_A). Inputs are RGB in [-1, 1]; outputs are unbounded.

    ``checkpoint_id`` identifies the weights (a short hash of the encoder), so style codes
    made by another encoder are refused; ``provenance`` says where the weights came from.
    """

    def __init__(self, with_photo_decoder: bool = True) -> None:
        super().__init__()
        self.encoder = Encoder()
        self.dec_b = Decoder()
        self.dec_a: Decoder | None = Decoder() if with_photo_decoder else None
        self.checkpoint_id = "untrained"
        self.provenance: dict[str, str] = {}

    # --- style codes ---------------------------------------------------------------------------

    def encode(self, x: Tensor) -> Tensor:
        """relu4_1 features (B, 512, ⌈H/8⌉, ⌈W/8⌉) of an image (B, 3, H, W) in [-1, 1]."""
        return self.encoder(x)

    @torch.no_grad()
    def style_code(self, style: Tensor, *, source: str = "tensor", name: str = "") -> StyleCode:
        """Encode a style image (B, 3, H, W) in [-1, 1] once; reuse the code for every frame.

        Computed under ``no_grad`` (not ``inference_mode``) so the code can also feed export.
        """
        if style.dim() != 4 or style.shape[1] != 3:
            raise ValueError(f"style must be (B, 3, H, W), got {tuple(style.shape)}")
        mean, std = Fn.channel_mean_std(self.encode(style))
        return StyleCode(
            mean=mean,
            std=std,
            source=source,
            size=(int(style.shape[-2]), int(style.shape[-1])),
            checkpoint_id=self.checkpoint_id,
            name=name,
        )

    # --- stylization ---------------------------------------------------------------------------

    def transform(self, content_feat: Tensor, code: StyleCode, alpha: float = 1.0) -> Tensor:
        """AdaIN of relu4_1 content features to the code, blended by strength ``alpha``."""
        mean = code.mean.to(device=content_feat.device, dtype=content_feat.dtype)
        std = code.std.to(device=content_feat.device, dtype=content_feat.dtype)
        t = Fn.adain(content_feat, mean, std)
        return Fn.blend_strength(t, content_feat, alpha)

    def stylize(
        self,
        content: Tensor,
        code: StyleCode,
        alpha: float = 1.0,
        *,
        preserve_color: bool = False,
        exact_size: bool = False,
    ) -> Tensor:
        """Raw Dec_B output (unclamped) for content (B, 3, H, W) in [-1, 1].

        By default this is the reference computation: a side that is not a multiple of 8
        gives a larger output (ceil-mode pooling). ``exact_size=True`` reflect-pads to a
        multiple of 8, runs, and crops back to exactly (H, W), as video needs.
        """
        if content.dim() != 4 or content.shape[1] != 3:
            raise ValueError(f"content must be (B, 3, H, W), got {tuple(content.shape)}")
        x, pads = Fn.pad_to_multiple(content, 8) if exact_size else (content, (0, 0, 0, 0))
        out = self.dec_b(self.transform(self.encode(x), code, alpha))
        if exact_size:
            out = Fn.crop_padding(out, pads)
        if preserve_color:
            out = Fn.preserve_color(out, content)
        return out

    def decode_photo(self, feat: Tensor) -> Tensor:
        """Dec_A (photo domain) of a relu4_1-sized feature."""
        if self.dec_a is None:
            raise RuntimeError("this generator was loaded without the photo decoder Dec_A")
        return self.dec_a(feat)

    def refresh_checkpoint_id(self) -> str:
        """Recompute ``checkpoint_id`` from the encoder weights (style codes depend on them)."""
        h = hashlib.sha256()
        for key, tensor in sorted(self.encoder.state_dict().items()):
            h.update(key.encode())
            h.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
        self.checkpoint_id = h.hexdigest()[:16]
        return self.checkpoint_id


def he_normal_init_(module: nn.Module, generator: torch.Generator) -> None:
    """He-normal conv weights, N(0, 0.01²) biases: random weights whose outputs are not ~0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
            with torch.no_grad():
                m.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.01, generator=generator)


def untrained_generator(seed: int = 0, with_photo_decoder: bool = True) -> CASTGenerator:
    """Seeded random weights, for smoke tests and benchmarks only (not a trained model)."""
    gen = CASTGenerator(with_photo_decoder=with_photo_decoder)
    he_normal_init_(gen, torch.Generator().manual_seed(seed))
    gen.refresh_checkpoint_id()
    gen.provenance = {"kind": "untrained", "seed": str(seed)}
    return gen.eval()
