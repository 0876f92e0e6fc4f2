"""Optical flow for temporal smoothing and its evaluation: OpenCV DIS, occlusion, warping.

Conventions (the same as OpenCV's DIS): ``flow = dis(a, b)`` gives, for every pixel ``x`` of
``a``, the displacement to where it is in ``b``, so ``a(x) ≈ b(x + flow(x))``. ``warp(b, flow)``
therefore resamples ``b`` onto ``a``'s grid. Flow arrays are float32 ``(H, W, 2)`` in pixels
(x then y); images are uint8 or float32 ``(H, W, C)`` RGB (or ``(H, W)`` grey).

Occlusion follows Ruder et al. 2016: a pixel is unreliable where the forward and backward flow
disagree (``|w + ŵ|² > 0.01(|w|² + |ŵ|²) + 0.5``), on motion boundaries
(``|∇u|² + |∇v|² > 0.01|w|² + 0.002``), or where it moves out of the frame.

The torch path (:func:`warp_torch`) uses kornia's remap and keeps frames on their device.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import Tensor

from models.errors import InputError

#: DIS presets by name.
PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) → uint8 grey (H, W); grey input is returned as is."""
    if rgb.ndim == 2:
        return rgb
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def scaled_size(h: int, w: int, scale: float) -> tuple[int, int]:
    """(h, w) scaled by ``scale`` (at least 8 pixels a side, never larger than the input)."""
    s = min(1.0, max(scale, 1e-3))
    return max(8, min(h, round(h * s))), max(8, min(w, round(w * s)))


def resize_flow(flow: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resample a flow field to ``size`` = (H, W), scaling the vectors with the grid."""
    h, w = flow.shape[:2]
    th, tw = size
    if (th, tw) == (h, w):
        return flow
    scaled = flow * np.array([tw / w, th / h], np.float32)  # on the small field: cheaper
    return cv2.resize(scaled, (tw, th), interpolation=cv2.INTER_LINEAR)


def pixel_grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 x and y pixel coordinates of an (h, w) frame."""
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx, gy


def warp(
    image: np.ndarray, flow: np.ndarray, grid: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """Resample ``image`` at ``x + flow(x)`` (bilinear, border replicated); keeps the dtype."""
    h, w = flow.shape[:2]
    gx, gy = grid if grid is not None else pixel_grid(h, w)
    return cv2.remap(
        image,
        gx + flow[..., 0],
        gy + flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )


def inside_mask(flow: np.ndarray, grid: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """True where ``x + flow(x)`` stays inside the frame."""
    h, w = flow.shape[:2]
    gx, gy = grid if grid is not None else pixel_grid(h, w)
    x = gx + flow[..., 0]
    y = gy + flow[..., 1]
    return (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def _sq_norm(v: np.ndarray) -> np.ndarray:
    """|v|² of a (H, W, 2) field."""
    return cv2.magnitude(v[..., 0], v[..., 1]) ** 2


def fb_consistent(
    fwd: np.ndarray, bwd: np.ndarray, grid: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """True where ``fwd`` (a→b) and ``bwd`` (b→a) agree (Ruder et al. 2016); on ``a``'s grid."""
    back = warp(bwd, fwd, grid)  # ŵ(x) = bwd(x + fwd(x))
    lhs = _sq_norm(fwd + back)
    rhs = 0.01 * (_sq_norm(fwd) + _sq_norm(back)) + 0.5
    return np.asarray(lhs <= rhs)


def motion_boundaries(flow: np.ndarray) -> np.ndarray:
    """True on motion boundaries: ``|∇u|² + |∇v|² > 0.01|w|² + 0.002`` (central differences)."""
    grad = np.zeros(flow.shape[:2], np.float32)
    for c in range(2):
        ch = np.ascontiguousarray(flow[..., c])
        gx = cv2.Sobel(ch, cv2.CV_32F, 1, 0, ksize=1, scale=0.5)
        gy = cv2.Sobel(ch, cv2.CV_32F, 0, 1, ksize=1, scale=0.5)
        grad += gx * gx + gy * gy
    return np.asarray(grad > 0.01 * _sq_norm(flow) + 0.002)


def reliable_mask(
    fwd: np.ndarray, bwd: np.ndarray, grid: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """True where warping ``b`` onto ``a`` by ``fwd`` is trustworthy (not occluded/boundary/outside)."""
    g = grid if grid is not None else pixel_grid(*fwd.shape[:2])
    return fb_consistent(fwd, bwd, g) & ~motion_boundaries(fwd) & inside_mask(fwd, g)


def flat_mask(gray: np.ndarray, threshold: float) -> np.ndarray:
    """True where the local (7×7 Gaussian) mean gradient magnitude is below ``threshold``/px."""
    gx = cv2.Sobel(gray, cv2.CV_32F, 1, 0, scale=0.125)
    gy = cv2.Sobel(gray, cv2.CV_32F, 0, 1, scale=0.125)
    return np.asarray(cv2.GaussianBlur(cv2.magnitude(gx, gy), (7, 7), 0) < threshold)


class DisFlow:
    """OpenCV DIS optical flow on grey uint8 frames (one instance per thread)."""

    def __init__(self, preset: str = "ultrafast") -> None:
        if preset not in PRESETS:
            raise InputError(f"unknown DIS preset {preset!r} (choose from {', '.join(PRESETS)})")
        self.preset = preset
        self._dis = cv2.DISOpticalFlow.create(PRESETS[preset])

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow a→b, float32 (H, W, 2): ``a(x) ≈ b(x + flow(x))``."""
        return np.asarray(self._dis.calc(to_gray(a), to_gray(b), None), np.float32)  # type: ignore[call-overload]


@dataclass(frozen=True)
class FlowResult:
    """Flow from the current frame to the previous one and how far to trust it, at full size.

    ``flow`` (H, W, 2): ``cur(x) ≈ prev(x + flow(x))``; ``mask`` (H, W) float32 in [0, 1]:
    1 where the previous frame may be warped onto the current one.
    """

    flow: np.ndarray
    mask: np.ndarray


class ReducedFlow:
    """DIS flow cur→prev at a reduced scale with a forward–backward occlusion mask.

    ``scale`` shrinks the frames before DIS (0.5: a quarter of the pixels); the flow and mask
    are computed there and resized to the frame size at the end. ``photometric`` (grey levels,
    0 disables) also distrusts pixels whose warped previous *input* differs from the current
    one by more than this, which catches flow failures the consistency check misses.
    ``flat`` (grey levels per pixel, 0 disables): in flat input regions, where fast DIS is
    noisy but any flow warps the same content, the consistency and boundary tests are waived
    (the photometric test still applies).
    """

    def __init__(
        self,
        scale: float = 0.5,
        preset: str = "ultrafast",
        photometric: float = 24.0,
        flat: float = 0.5,
    ) -> None:
        if not 0.0 < scale <= 1.0:
            raise InputError(f"flow scale must be in (0, 1], got {scale}")
        self.scale = scale
        self.photometric = photometric
        self.flat = flat
        self._dis = DisFlow(preset)
        self._grids: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def grid(self, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinate grids of an (h, w) frame, built once per size."""
        if (h, w) not in self._grids:
            self._grids = {(h, w): pixel_grid(h, w), **dict(list(self._grids.items())[-3:])}
        return self._grids[(h, w)]

    def small_gray(self, rgb: np.ndarray) -> np.ndarray:
        """The grey frame at the working scale (cache it: each frame is used twice)."""
        g = to_gray(rgb)
        h, w = g.shape
        sh, sw = scaled_size(h, w, self.scale)
        return g if (sh, sw) == (h, w) else cv2.resize(g, (sw, sh), interpolation=cv2.INTER_AREA)

    def __call__(
        self, cur_small: np.ndarray, prev_small: np.ndarray, size: tuple[int, int]
    ) -> FlowResult:
        """Flow and trust mask from small grey frames; returned at ``size`` = (H, W)."""
        fwd = self._dis(cur_small, prev_small)  # cur → prev
        bwd = self._dis(prev_small, cur_small)
        g = self.grid(*cur_small.shape[:2])
        reliable = fb_consistent(fwd, bwd, g) & ~motion_boundaries(fwd)
        if self.flat > 0:
            reliable |= flat_mask(cur_small, self.flat)
        mask = (reliable & inside_mask(fwd, g)).astype(np.float32)
        if self.photometric > 0:
            err = cv2.absdiff(warp(prev_small, fwd, g), cur_small).astype(np.float32)
            mask *= np.exp(-((err * (1.0 / self.photometric)) ** 2))
        mask = np.asarray(cv2.erode(mask, np.ones((3, 3), np.uint8)), np.float32)
        h, w = size
        if mask.shape != (h, w):
            mask = np.asarray(cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR))
        return FlowResult(resize_flow(fwd, (h, w)), mask)


# ---------------------------------------------------------------- torch / device side


def flow_to_tensor(flow: np.ndarray, device: torch.device | str = "cpu") -> Tensor:
    """(H, W, 2) numpy flow → (1, 2, H, W) float32 tensor on ``device``."""
    return torch.from_numpy(np.ascontiguousarray(flow)).permute(2, 0, 1).unsqueeze(0).to(device)


def warp_torch(image: Tensor, flow: Tensor) -> Tensor:
    """Device-side :func:`warp`: image (B, C, H, W) float, flow (B, 2, H, W) in pixels."""
    import kornia.geometry.transform as KT

    h, w = image.shape[-2:]
    ys, xs = torch.meshgrid(
        torch.arange(h, device=image.device, dtype=flow.dtype),
        torch.arange(w, device=image.device, dtype=flow.dtype),
        indexing="ij",
    )
    map_x = (xs + flow[:, 0]).to(image.dtype)  # (B, H, W)
    map_y = (ys + flow[:, 1]).to(image.dtype)
    return KT.remap(image, map_x, map_y, mode="bilinear", padding_mode="border", align_corners=True)
