"""Pure tensor functions of CAST: statistics, AdaIN, strength, interpolation, colour, uint8.

Every function here is stateless and works on any device and dtype. Shapes are noted as
``(B, C, H, W)``; a channel statistic is ``(B, C, 1, 1)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

ADAIN_EPS = 1e-5


def channel_mean_std(feat: Tensor, eps: float = ADAIN_EPS) -> tuple[Tensor, Tensor]:
    """Per-(sample, channel) mean and std over H×W, as the reference computes them.

    The variance is unbiased (divides by H·W − 1) and ``eps`` is added inside the square root.
    """
    n = feat.shape[-2] * feat.shape[-1]
    mean = feat.mean(dim=(2, 3), keepdim=True)  # (B, C, 1, 1)
    centered = feat - mean
    # two passes with means: as exact as Tensor.var and ~6× faster on a channels_last CPU
    # tensor (whose var and sum over H, W take a slow strided path)
    unbiased = n / (n - 1) if n > 1 else float("nan")
    var = (centered * centered).mean(dim=(2, 3), keepdim=True) * unbiased + eps
    return mean, var.sqrt()


def adain(content_feat: Tensor, style_mean: Tensor, style_std: Tensor) -> Tensor:
    """Adaptive instance normalisation: content statistics replaced by the style's.

    content_feat (B, C, H, W); style_mean, style_std (B or 1, C, 1, 1).
    """
    c_mean, c_std = channel_mean_std(content_feat)
    normalized = (content_feat - c_mean.expand_as(content_feat)) / c_std.expand_as(content_feat)
    return normalized * style_std.expand_as(content_feat) + style_mean.expand_as(content_feat)


def adain_from_stats(
    content_feat: Tensor,
    content_mean: Tensor,
    content_std: Tensor,
    style_mean: Tensor,
    style_std: Tensor,
) -> Tensor:
    """AdaIN with given content statistics (temporal smoothing of statistics uses this)."""
    normalized = (content_feat - content_mean) / content_std
    return normalized * style_std + style_mean


def blend_strength(stylized_feat: Tensor, content_feat: Tensor, alpha: float) -> Tensor:
    """Style strength α: ``α·AdaIN + (1 − α)·content`` (AdaIN-paper convention).

    α = 1 returns ``stylized_feat`` itself, so the reference path stays bit-exact.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"style strength alpha must be in [0, 1], got {alpha}")
    if alpha == 1.0:
        return stylized_feat
    return alpha * stylized_feat + (1.0 - alpha) * content_feat


def normalize_weights(weights: Sequence[float], count: int) -> list[float]:
    """Validate interpolation weights (non-negative, not all zero) and make them sum to 1."""
    if len(weights) != count:
        raise ValueError(f"got {len(weights)} weights for {count} styles")
    if any(w < 0 or w != w for w in weights):
        raise ValueError(f"weights must be non-negative numbers, got {list(weights)}")
    total = float(sum(weights))
    if total <= 0:
        raise ValueError("weights must not all be zero")
    return [float(w) / total for w in weights]


def interpolate_stats(
    means: Sequence[Tensor], stds: Sequence[Tensor], weights: Sequence[float]
) -> tuple[Tensor, Tensor]:
    """Weighted mix of several styles' statistics, each (1, C, 1, 1).

    AdaIN is affine in (μ_s, σ_s), so ``AdaIN(c; Σ wᵢμᵢ, Σ wᵢσᵢ) = Σ wᵢ AdaIN(c; μᵢ, σᵢ)``: this
    equals interpolating the AdaIN features, as the AdaIN paper does.
    """
    if not means or len(means) != len(stds):
        raise ValueError("need the same, non-zero number of means and stds")
    w = normalize_weights(weights, len(means))
    mean = sum(wi * m for wi, m in zip(w, means))
    std = sum(wi * s for wi, s in zip(w, stds))
    assert isinstance(mean, Tensor) and isinstance(std, Tensor)
    return mean, std


# --- colour -----------------------------------------------------------------------------------

# ITU-R BT.601 full-range RGB <-> YCbCr (JPEG), rows act on (R, G, B).
_RGB_TO_Y = (0.299, 0.587, 0.114)


def _luma(rgb01: Tensor) -> Tensor:
    r, g, b = rgb01.unbind(dim=1)
    return (_RGB_TO_Y[0] * r + _RGB_TO_Y[1] * g + _RGB_TO_Y[2] * b).unsqueeze(1)  # (B, 1, H, W)


def preserve_color(stylized: Tensor, content: Tensor) -> Tensor:
    """Keep the content's colours: luminance from ``stylized``, chroma from ``content``.

    Both (B, 3, H, W) in [-1, 1] (``stylized`` may exceed it; it is clamped). Works in
    YCbCr: ``out = stylized_Y + (content − content_Y)`` per channel, which is exactly the
    chroma swap because the RGB→YCbCr transform is linear. If sizes differ, the content is
    resized to the stylized size first.
    """
    if content.shape[-2:] != stylized.shape[-2:]:
        content = F.interpolate(
            content, size=stylized.shape[-2:], mode="bilinear", align_corners=False
        )
    s01 = (stylized.clamp(-1.0, 1.0) + 1.0) * 0.5
    c01 = (content + 1.0) * 0.5
    out01 = _luma(s01) + (c01 - _luma(c01))  # (B, 3, H, W)
    return out01.clamp(0.0, 1.0) * 2.0 - 1.0


# --- conversions ------------------------------------------------------------------------------


def uint8_to_unit(image: Tensor) -> Tensor:
    """uint8 (B, 3, H, W) or (H, W, 3) RGB → float [-1, 1] (B, 3, H, W), as ToTensor+Normalize."""
    if image.dtype != torch.uint8:
        raise TypeError(f"expected a uint8 image, got {image.dtype}")
    if image.dim() == 3:
        image = image.permute(2, 0, 1).unsqueeze(0)  # (1, 3, H, W)
    x = image.float() / 255.0
    return (x - 0.5) / 0.5


def unit_to_uint8(x: Tensor, rounding: str = "truncate") -> Tensor:
    """float (B, 3, H, W) in ~[-1, 1] → uint8 (B, H, W, 3) RGB.

    ``rounding="truncate"`` reproduces the reference's ``tensor2im`` (clamp, (x+1)/2·255,
    cast, which truncates); ``"round"`` rounds to nearest (unbiased, used for video).
    """
    y = (x.clamp(-1.0, 1.0) + 1.0) / 2.0 * 255.0
    if rounding == "round":
        y = y.round()
    elif rounding != "truncate":
        raise ValueError(f"rounding must be 'truncate' or 'round', got {rounding!r}")
    return y.to(torch.uint8).permute(0, 2, 3, 1).contiguous()


# --- exact-size padding -----------------------------------------------------------------------


MIN_SIDE = 16  # relu4_1 must be at least 2×2 for the reflection pads of the last stages


def pad_amounts(
    height: int, width: int, multiple: int = 8, minimum: int = MIN_SIDE
) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding that brings H and W to a multiple of ``multiple``
    and to at least ``minimum``.

    The padding is split evenly (the extra pixel goes right/bottom) so border effects are
    symmetric.
    """
    ph = max((-height) % multiple, minimum - height)
    pw = max((-width) % multiple, minimum - width)
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


def pad_to_multiple(x: Tensor, multiple: int = 8) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Reflect-pad (B, C, H, W) so H and W are multiples of ``multiple``; returns the padding.

    Sides under :data:`MIN_SIDE` are padded up to it. Reflection needs the pad to be smaller
    than the side; tiny images fall back to replicate.
    """
    h, w = x.shape[-2:]
    pads = pad_amounts(h, w, multiple)
    if pads == (0, 0, 0, 0):
        return x, pads
    left, right, top, bottom = pads
    mode = "reflect" if max(left, right) < w and max(top, bottom) < h else "replicate"
    return F.pad(x, pads, mode=mode), pads


def crop_padding(x: Tensor, pads: tuple[int, int, int, int]) -> Tensor:
    """Undo :func:`pad_to_multiple` on (B, C, H', W')."""
    left, right, top, bottom = pads
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]


# --- exact rewrites of conv layers (the inference engine uses them) ----------------------------


def fold_pointwise_into_conv(
    pw_weight: Tensor, pw_bias: Tensor, weight: Tensor, bias: Tensor
) -> tuple[Tensor, Tensor]:
    """A 1×1 conv (M, C, 1, 1) followed by a conv (O, M, kh, kw) as one conv (O, C, kh, kw).

    Exact also with reflection or replicate padding between the two (a per-pixel map commutes
    with padding that copies pixels); not with zero padding.
    """
    w = torch.einsum("omyx,mc->ocyx", weight, pw_weight[:, :, 0, 0])  # (O, C, kh, kw)
    b = bias + torch.einsum("omyx,m->o", weight, pw_bias)  # (O,)
    return w, b


def _phase_taps(k: Tensor, dim: int) -> list[Tensor]:
    """The two 2-tap kernels, for output phase 0 and 1, of a 3-tap kernel along ``dim``
    applied after a nearest 2× upsampling: phase 0 sees input rows (i-1, i, i), phase 1
    (i, i, i+1)."""
    t0, t1, t2 = k.unbind(dim)
    return [torch.stack([t0, t1 + t2], dim), torch.stack([t0 + t1, t2], dim)]


def up2_conv3_phase_weights(weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """Weights for :func:`up2_conv3` from a 3×3 conv (O, C, 3, 3) and its bias (O,).

    Returns (4·O, C, 2, 2) and (4·O,): the 2×2 kernels of the four output phases (a, b)
    (row parity a, column parity b), stacked phase-major (index ``(2a + b)·O + o``).
    """
    phases = [p for rows in _phase_taps(weight, 2) for p in _phase_taps(rows, 3)]
    return torch.cat(phases, 0), bias.repeat(4)


def replicate_pad1(x: Tensor) -> Tensor:
    """Replicate padding by one pixel on each side of (B, C, H, W), built from slices (keeps
    channels_last, unlike ``F.pad``)."""
    x = torch.cat([x[:, :, :1], x, x[:, :, -1:]], dim=2)  # (B, C, H+2, W)
    return torch.cat([x[..., :1], x, x[..., -1:]], dim=3)  # (B, C, H+2, W+2)


def memory_format_of(t: Tensor) -> torch.memory_format:
    """``channels_last`` when the 4-D ``t`` is laid out that way (and not also contiguous),
    else ``contiguous_format``."""
    cl = t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()
    return torch.channels_last if cl else torch.contiguous_format


def interleave_phases(z: Tensor) -> Tensor:
    """(B, 4·O, H+1, W+1) phase outputs of a 2×2 conv over a replicate-padded (H, W) input
    → the (B, O, 2H, 2W) image: output pixel (2i+a, 2j+b) is phase (a, b) at (i+a, j+b).

    The result has ``z``'s memory format.
    """
    b, c4, h1, w1 = z.shape
    o, h, w = c4 // 4, h1 - 1, w1 - 1
    fmt = memory_format_of(z)
    y = torch.empty((b, o, 2 * h, 2 * w), dtype=z.dtype, device=z.device, memory_format=fmt)
    for a in range(2):
        for c in range(2):
            k = 2 * a + c
            y[:, :, a::2, c::2] = z[:, k * o : (k + 1) * o, a : a + h, c : c + w]
    return y


def up2_conv3(x: Tensor, phase_weight: Tensor, phase_bias: Tensor) -> Tensor:
    """Nearest 2× upsampling, reflection padding by 1 and a 3×3 conv, computed at the input
    resolution: (B, C, H, W) → (B, O, 2H, 2W) with 4/9 of the multiply-adds.

    ``phase_weight``, ``phase_bias`` come from :func:`up2_conv3_phase_weights`. Exact: the
    reflection-padded upsampled image is the upsampled replicate-padded input, and each output
    phase of the 3×3 conv sees only two distinct input rows and columns.
    """
    z = F.conv2d(replicate_pad1(x), phase_weight, phase_bias)  # (B, 4·O, H+1, W+1)
    return interleave_phases(z)


# --- centred activations (reduced-precision networks, see realtime.engine.CentredNet) ---------


def subsampled_channel_mean(x: Tensor, stride: int = 4) -> Tensor:
    """Float32 per-channel mean (C,) of (B, C, H, W) over the batch and every ``stride``-th
    row and column: a cheap estimate of the channel means (1/stride² of the reads)."""
    return x[:, :, ::stride, ::stride].float().mean(dim=(0, 2, 3))


def round_to_dtype(x: Tensor, dtype: torch.dtype) -> Tensor:
    """``x`` (float32 or float64) rounded to a nearby value exactly representable in ``dtype``.

    Eagerly a cast there and back; under torch.compile :func:`round_to_dtype_arith`, because
    Inductor drops such a cast pair inside a fused kernel unless told to emulate it.
    """
    if torch.compiler.is_compiling():
        return round_to_dtype_arith(x, dtype)
    return x.to(dtype).to(x.dtype)


def round_to_dtype_arith(x: Tensor, dtype: torch.dtype) -> Tensor:
    """:func:`round_to_dtype` with plain arithmetic in ``x``'s dtype: the nearest value of
    ``dtype``, but for a rare step further where ``log2`` misses a power of two (no
    overflow handling)."""
    info = torch.finfo(dtype)
    mantissa_bits = round(-math.log2(info.eps))  # stored bits: 7 for bf16, 10 for fp16
    lowest = math.log2(info.smallest_normal) - mantissa_bits  # the smallest subnormal's
    exponent = torch.floor(torch.log2(x.abs().clamp_min(info.smallest_normal)))
    step = torch.exp2((exponent - mantissa_bits).clamp_min(lowest))
    return torch.round(x / step) * step


def centred_conv_terms(
    weight_sum: Tensor,
    bias: Tensor,
    offset: Tensor,
    mean: Tensor,
    dtype: torch.dtype,
    phases: int = 1,
) -> tuple[Tensor, Tensor]:
    """Bias and output offset of a conv applied to an activation held as ``a = s + offset``.

    The activation is a reduced-precision remainder ``s`` (B, C, H, W) around a per-channel
    float32 ``offset`` (C,), whose mean is about ``mean`` (C,). A conv with weights W (P·O, C,
    kh, kw) and ``bias`` (P·O,) computes ``W∗a + b = W∗s + weight_sum @ offset + b``, where
    ``weight_sum`` (P·O, C) is W summed over its taps: exact with reflection or replicate
    padding, which map a constant image to itself. ``phases`` P > 1: the conv's channels are
    P phase-major groups of the same O output channels (:func:`up2_conv3`), which share one
    output offset.

    Returns ``(bias', out_offset)``, (P·O,) and (O,) in the terms' float dtype: run the conv on
    ``s`` with ``bias'`` and the true output is the result plus ``out_offset``. That is the
    estimated output mean rounded to ``dtype`` (:func:`round_to_dtype`), so the remainder
    stays small (its rounding error is relative to the channel's variation, not to its
    level) and ``-out_offset``, the ReLU's threshold for the remainder, is exact in ``dtype``.
    Each phase's bias uses its own weight sum, which differ by the rounding of the weights.
    """
    out_mean = (weight_sum @ (mean + offset) + bias).view(phases, -1).mean(dim=0)
    out_offset = round_to_dtype(out_mean, dtype)
    return weight_sum @ offset + bias - out_offset.repeat(phases), out_offset
