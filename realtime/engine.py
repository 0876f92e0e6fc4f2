"""The device-resident stylizer: uint8 RGB frames in, stylized uint8 RGB frames out.

The only place that knows about devices, precision and memory formats. Public API (used by
the pipeline, the converter, temporal smoothing and the benchmark):

* ``StylizeEngine(generator, EngineConfig)``
* ``engine.process(frame, code, alpha=1.0, preserve_color=False) -> np.ndarray``
* ``engine.process_batch(frames, code, alpha=1.0, preserve_color=False) -> list[np.ndarray]``
* ``engine.content_stats_hook`` is an optional callable ``(mean, std) -> (mean, std)`` applied to
  the relu4_1 content statistics before AdaIN (temporal ``stats`` smoothing uses it).

This first version is plain eager fp32; processing resolution, reduced precision,
channels_last and compilation come with the engine issue.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models import functional as Fn
from models.generator import CASTGenerator
from models.style_code import StyleCode

StatsHook = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class EngineConfig:
    """How the engine runs. ``resolution`` is the processing shorter side (0: native)."""

    device: str = "cpu"
    precision: str = "fp32"
    resolution: int = 0


class StylizeEngine:
    """Stylizes uint8 RGB frames of any size on one device; output has the input's size."""

    def __init__(self, generator: CASTGenerator, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.device = torch.device(self.config.device)
        self.generator = generator.to(self.device).eval()
        self.content_stats_hook: StatsHook | None = None

    def _processing_size(self, h: int, w: int) -> tuple[int, int]:
        r = self.config.resolution
        if r <= 0 or min(h, w) <= r:
            return h, w
        s = r / min(h, w)
        return max(1, round(h * s)), max(1, round(w * s))

    @torch.inference_mode()
    def _run(self, x: Tensor, code: StyleCode, alpha: float, preserve_color: bool) -> Tensor:
        """(B, 3, H, W) in [-1, 1] → (B, 3, H, W) output (unclamped)."""
        h, w = x.shape[-2:]
        ph, pw = self._processing_size(h, w)
        work = (
            F.interpolate(x, size=(ph, pw), mode="bilinear", antialias=True, align_corners=False)
            if (ph, pw) != (h, w)
            else x
        )
        padded, pads = Fn.pad_to_multiple(work, 8)
        gen = self.generator
        feat = gen.encode(padded)
        c_mean, c_std = Fn.channel_mean_std(feat)
        if self.content_stats_hook is not None:
            c_mean, c_std = self.content_stats_hook(c_mean, c_std)
        mean = code.mean.to(feat.device, feat.dtype)
        std = code.std.to(feat.device, feat.dtype)
        t = Fn.adain_from_stats(feat, c_mean, c_std, mean, std)
        out = Fn.crop_padding(gen.dec_b(Fn.blend_strength(t, feat, alpha)), pads)
        if (ph, pw) != (h, w):
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        if preserve_color:
            out = Fn.preserve_color(out, x)
        return out

    def process_batch(
        self,
        frames: Sequence[np.ndarray],
        code: StyleCode,
        alpha: float = 1.0,
        preserve_color: bool = False,
    ) -> list[np.ndarray]:
        """Stylize frames of one size together; each result has its input's size."""
        if not frames:
            return []
        batch = torch.from_numpy(np.stack(frames)).to(self.device)  # (B, H, W, 3) uint8
        x = Fn.uint8_to_unit(batch.permute(0, 3, 1, 2))
        out = self._run(x, code, alpha, preserve_color)
        u8 = Fn.unit_to_uint8(out.float(), rounding="round").cpu().numpy()
        return list(u8)

    def process(
        self, frame: np.ndarray, code: StyleCode, alpha: float = 1.0, preserve_color: bool = False
    ) -> np.ndarray:
        """Stylize one uint8 RGB (H, W, 3) frame."""
        return self.process_batch([frame], code, alpha, preserve_color)[0]
