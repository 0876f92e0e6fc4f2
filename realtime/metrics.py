"""Temporal-consistency measurements: warping error, global flicker, fidelity, overhead.

* **E_warp** (Lai et al. 2018): mean over consecutive frame pairs of the masked mean squared
  difference between output ``t`` and output ``t−1`` warped onto ``t`` with the *input's*
  flow (RGB in [0, 1]); the mask drops occlusions, motion boundaries and out-of-frame pixels
  (Ruder et al. 2016, see :mod:`realtime.flow`). The evaluation flow is DIS ``medium`` at full
  size, independent of the cheaper flow the ``flow`` strategy uses.
* **flicker**: mean over pairs of ``max(0, |ΔY_out| − |ΔY_in|)``, Y the frame's mean Rec.601
  luminance in grey levels — global brightness change of the output beyond the input's.
* **fidelity**: PSNR (from the masked MSE pooled over all frames) and mean masked SSIM of a
  smoothed output against the per-frame output, in non-occluded pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import cv2
import numpy as np

from realtime.flow import DisFlow, reliable_mask, warp


def luminance(rgb: np.ndarray) -> float:
    """Mean Rec.601 luma of a uint8 RGB frame, in grey levels."""
    m = rgb.reshape(-1, 3).mean(0)
    return float(0.299 * m[0] + 0.587 * m[1] + 0.114 * m[2])


def to_unit(rgb: np.ndarray) -> np.ndarray:
    """uint8 → float32 in [0, 1]."""
    return rgb.astype(np.float32) * (1.0 / 255.0)


def masked_sse(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(sum of masked squared differences over channels, number of masked values)."""
    d = a.astype(np.float32) - b.astype(np.float32)
    m = mask.astype(np.float32)[..., None]
    return float((d * d * m).sum()), float(m.sum() * a.shape[-1])


def psnr_from_mse(mse: float, peak: float = 1.0) -> float:
    """PSNR in dB (infinite for identical inputs)."""
    return math.inf if mse <= 0 else 10.0 * math.log10(peak * peak / mse)


def ssim_map(a: np.ndarray, b: np.ndarray, sigma: float = 1.5) -> np.ndarray:
    """SSIM map (Wang et al. 2004, Gaussian window σ=1.5, RGB in [0, 1]) averaged over channels."""
    x, y = to_unit(a), to_unit(b)
    c1, c2 = 0.01**2, 0.03**2

    def blur(v: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(v, (11, 11), sigma, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return np.asarray(s.mean(-1) if s.ndim == 3 else s)


def masked_ssim(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM over the pixels where ``mask`` is set."""
    smap = ssim_map(a, b)
    m = mask.astype(bool)
    return float(smap[m].mean()) if m.any() else 1.0


@dataclass(frozen=True)
class PairFlow:
    """Input flow from frame t to frame t−1 and the non-occlusion mask on frame t's grid."""

    flow: np.ndarray  # (H, W, 2): in_t(x) ≈ in_{t-1}(x + flow(x))
    mask: np.ndarray  # (H, W) bool


def input_flows(frames: Sequence[np.ndarray], preset: str = "medium") -> list[PairFlow | None]:
    """Evaluation flows for consecutive input frames (None for the first frame)."""
    dis = DisFlow(preset)
    out: list[PairFlow | None] = [None]
    for prev, cur in pairwise(frames):
        fwd = dis(cur, prev)
        bwd = dis(prev, cur)
        out.append(PairFlow(fwd, reliable_mask(fwd, bwd)))
    return out


@dataclass
class TemporalScore:
    """Accumulates E_warp, flicker and fidelity of one output sequence, frame by frame."""

    with_ssim: bool = True
    _ewarp: list[float] = field(default_factory=list)
    _flicker: list[float] = field(default_factory=list)
    _fid_sse: float = 0.0
    _fid_n: float = 0.0
    _ssim: list[float] = field(default_factory=list)
    _prev_out: np.ndarray | None = None
    _prev_y_in: float = 0.0
    _prev_y_out: float = 0.0

    def update(
        self,
        frame_in: np.ndarray,
        out: np.ndarray,
        pair: PairFlow | None,
        reference: np.ndarray | None = None,
    ) -> None:
        """Add frame t: its input, the strategy's output, the input flow t→t−1, the per-frame output."""
        y_in, y_out = luminance(frame_in), luminance(out)
        if pair is not None and self._prev_out is not None:
            warped = warp(to_unit(self._prev_out), pair.flow)
            sse, n = masked_sse(to_unit(out), warped, pair.mask)
            if n > 0:
                self._ewarp.append(sse / n)
            self._flicker.append(
                max(0.0, abs(y_out - self._prev_y_out) - abs(y_in - self._prev_y_in))
            )
            if reference is not None:
                sse, n = masked_sse(to_unit(out), to_unit(reference), pair.mask)
                self._fid_sse += sse
                self._fid_n += n
                if self.with_ssim:
                    self._ssim.append(masked_ssim(out, reference, pair.mask))
        self._prev_out = out
        self._prev_y_in, self._prev_y_out = y_in, y_out

    def result(self) -> dict[str, float]:
        """``e_warp``, ``flicker`` and (with references) ``psnr`` and ``ssim``."""
        res = {
            "e_warp": float(np.mean(self._ewarp)) if self._ewarp else 0.0,
            "flicker": float(np.mean(self._flicker)) if self._flicker else 0.0,
        }
        if self._fid_n > 0:
            res["psnr"] = psnr_from_mse(self._fid_sse / self._fid_n)
        if self._ssim:
            res["ssim"] = float(np.mean(self._ssim))
        return res
