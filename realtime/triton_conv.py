"""One Triton kernel per 3×3 layer: reflection padding, pooling/upsampling, conv, bias, ReLU.

The compiled CUDA engine spends 1.63 of its 6.09 ms per 1080p frame (H100) in the passes
between convolutions that apply bias + ReLU and build the reflect-padded input of the next
conv (bench/RESULTS.md). This kernel removes those passes: it is an implicit-GEMM 3×3
convolution on channels_last (NHWC) memory whose loads mirror the indices at the borders
(reflection padding without a padded copy), optionally read through a 2×2 max-pool or a ×2
nearest upsample of the stored tensor, and whose epilogue adds the bias and applies the ReLU.

A second kernel computes ``upsample ×2 → reflection pad → 3×3 conv`` as four 2×2 output
phases at the input resolution (4/9 of the multiply-adds, ``EngineConfig(upsample_conv=
"phases")``) and stores them interleaved, so no interleaving pass follows.

Status: correct (tested against PyTorch through Triton's interpreter on the CPU,
``TRITON_INTERPRET=1``); its speed on a GPU has not been measured yet, so the engine uses it
only when asked (``EngineConfig(conv_impl="triton")``).
"""

from __future__ import annotations

import copy
from typing import NamedTuple

import torch
import triton
import triton.language as tl
from torch import Tensor, nn

from models import functional as Fn
from models.generator import CASTGenerator
from realtime.engine import (
    ReflectConv,
    conv_bias,
    flat_layers,
    generator_layers,
    is_up2_nearest,
    match_folded_pad_conv,
    match_pad_conv,
)

INPUT_OPS = {"none": 0, "up2": 1, "pool2": 2}
MIN_CHANNELS = 16  # input channels: a multiple of this (the first RGB conv stays on PyTorch)


@triton.jit
def _bias_relu_store(acc, b_ptr, y_ptr, pix, offs_n, m_ok, n_ok, K, RELU: tl.constexpr):
    """The kernels' epilogue: add the bias, apply the ReLU, store rows ``pix`` (NHWC)."""
    acc += tl.load(b_ptr + offs_n, mask=n_ok, other=0.0).to(tl.float32)[None, :]
    if RELU:
        acc = tl.maximum(acc, 0.0)
    y_ptrs = y_ptr + pix[:, None] * K + offs_n[None, :]
    tl.store(y_ptrs, acc.to(y_ptr.dtype.element_ty), mask=m_ok[:, None] & n_ok[None, :])


@triton.jit
def _tile(M, K, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    """This program's tile: its rows (flattened pixels), output channels and reduction
    offsets, and the row and channel masks."""
    offs_m = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    return offs_m, offs_n, tl.arange(0, BLOCK_K), offs_m < M, offs_n < K


@triton.jit
def _dot_weights(acc, a, w_ptr, kk, offs_k, offs_n, n_ok, K):
    """``acc`` plus ``a`` times rows ``kk + offs_k`` of the row-major (rows, K) weight matrix
    at ``w_ptr`` (columns ``offs_n``)."""
    wt = tl.load(
        w_ptr + (kk + offs_k)[:, None] * K + offs_n[None, :], mask=n_ok[None, :], other=0.0
    )
    return acc + tl.dot(a, wt)


@triton.jit
def _reflect_conv3x3_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    M,
    H,
    W,
    HIN,
    WIN,
    C,
    K,
    INPUT_OP: tl.constexpr,  # 0: as stored, 1: nearest upsample ×2, 2: max-pool 2×2
    RELU: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    # y[p, n] = bias[n] + sum_{tap, c} x_in[reflect(p + tap), c] * w[tap * C + c, n]
    offs_m, offs_n, offs_k, m_ok, n_ok = _tile(M, K, BLOCK_M, BLOCK_N, BLOCK_K)  # m: (b, oh, ow)
    ow = offs_m % W
    oh = (offs_m // W) % H
    ob = offs_m // (W * H)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    # one loop over (tap, channel chunk) pairs so the compiler can pipeline every layer's
    # loads, also the 64-channel ones (BLOCK_K divides C, so a chunk never spans two taps)
    for kk in range(0, 9 * C, BLOCK_K):
        tap = kk // C
        c0 = kk - tap * C
        ih = oh + (tap // 3 - 1)
        iw = ow + (tap % 3 - 1)
        ih = tl.where(ih < 0, -ih, ih)  # reflection: -1 → 1, H → H - 2
        ih = tl.where(ih >= H, 2 * H - 2 - ih, ih)
        iw = tl.where(iw < 0, -iw, iw)
        iw = tl.where(iw >= W, 2 * W - 2 - iw, iw)
        if INPUT_OP == 1:
            ih = ih // 2
            iw = iw // 2
        if INPUT_OP == 2:
            ih = ih * 2
            iw = iw * 2
        row = ((ob * HIN + ih) * WIN + iw).to(tl.int64) * C  # (BLOCK_M,) element offsets
        a_ptrs = x_ptr + row[:, None] + (c0 + offs_k)[None, :]
        a_mask = m_ok[:, None]
        a = tl.load(a_ptrs, mask=a_mask, other=0.0)
        if INPUT_OP == 2:
            a = tl.maximum(a, tl.load(a_ptrs + C, mask=a_mask, other=0.0))
            a = tl.maximum(a, tl.load(a_ptrs + WIN * C, mask=a_mask, other=0.0))
            a = tl.maximum(a, tl.load(a_ptrs + WIN * C + C, mask=a_mask, other=0.0))
            a = a.to(x_ptr.dtype.element_ty)  # tl.dot needs equal dtypes; the interpreter widened
        acc = _dot_weights(acc, a, w_ptr, kk, offs_k, offs_n, n_ok, K)
    _bias_relu_store(acc, b_ptr, y_ptr, offs_m.to(tl.int64), offs_n, m_ok, n_ok, K, RELU)


@triton.jit
def _up2_phase_conv_kernel(
    x_ptr,
    w_ptr,
    b_ptr,
    y_ptr,
    M,
    HIN,
    WIN,
    C,
    K,
    RELU: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_K: tl.constexpr,
):
    # One output phase (a, b) per program_id(2): y[2i+a, 2j+b, n] = bias[n] +
    # sum_{u, v, c} x[clamp(i+a+u-1), clamp(j+b+v-1), c] * w[phase, (u*2 + v) * C + c, n]
    # (models.functional.up2_conv3: nearest ×2 + reflection pad + 3×3 conv, at input size)
    phase = tl.program_id(2)
    pa = phase // 2
    pb = phase % 2
    offs_m, offs_n, offs_k, m_ok, n_ok = _tile(M, K, BLOCK_M, BLOCK_N, BLOCK_K)  # m: (b, i, j)
    j = offs_m % WIN
    i = (offs_m // WIN) % HIN
    ob = offs_m // (WIN * HIN)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    w_base = w_ptr + phase * (4 * C * K)
    for kk in range(0, 4 * C, BLOCK_K):
        tap = kk // C
        c0 = kk - tap * C
        ih = tl.minimum(tl.maximum(i + pa + tap // 2 - 1, 0), HIN - 1)  # replicate padding
        iw = tl.minimum(tl.maximum(j + pb + tap % 2 - 1, 0), WIN - 1)
        row = ((ob * HIN + ih) * WIN + iw).to(tl.int64) * C
        a = tl.load(x_ptr + row[:, None] + (c0 + offs_k)[None, :], mask=m_ok[:, None], other=0.0)
        acc = _dot_weights(acc, a, w_base, kk, offs_k, offs_n, n_ok, K)
    pix = (ob * (2 * HIN) + 2 * i + pa) * (2 * WIN) + 2 * j + pb  # the output pixel
    _bias_relu_store(acc, b_ptr, y_ptr, pix.to(tl.int64), offs_n, m_ok, n_ok, K, RELU)


def conv_weight_matrix(weight: Tensor) -> Tensor:
    """(K, C, 3, 3) conv weight → the kernel's (9·C, K) matrix, row ``(ky·3 + kx)·C + c``."""
    k, c = weight.shape[:2]
    return weight.permute(2, 3, 1, 0).reshape(9 * c, k).contiguous()


class Blocks(NamedTuple):
    """A kernel launch configuration: tile sizes (output pixels, output channels, reduction
    chunk) and Triton's warps and pipeline stages."""

    m: int
    n: int
    k: int
    warps: int
    stages: int


def block_sizes(c: int, k: int) -> Blocks:
    """The launch configuration for C input and K output channels.

    tl.dot needs blocks of at least 16; BLOCK_K must divide C (C a multiple of 16).
    ``bench/triton_tune.py`` times alternatives per layer on a GPU.
    """
    if c % MIN_CHANNELS:
        raise ValueError(f"the kernel needs a multiple of 16 input channels, got {c}")
    block_n = 16 if k <= 16 else 64 if k <= 64 else 128
    block_k = next(b for b in (64, 32, 16) if c % b == 0)
    # 4 warps make one Hopper warpgroup
    return Blocks(128, block_n, block_k, 8 if block_n == 128 else 4, 3)


CANDIDATES: tuple[Blocks, ...] = (  # alternatives bench/triton_tune.py times per layer
    Blocks(128, 128, 64, 8, 4),
    Blocks(128, 256, 64, 8, 3),
    Blocks(256, 128, 64, 8, 3),
    Blocks(64, 128, 64, 4, 4),
    Blocks(128, 64, 64, 4, 4),
    Blocks(128, 128, 32, 8, 4),
    Blocks(64, 64, 64, 4, 3),
    Blocks(256, 16, 64, 8, 3),
    Blocks(64, 16, 64, 4, 3),
)


def _launch_blocks(blocks: Blocks | None, c: int, k: int) -> Blocks:
    """``blocks``, or :func:`block_sizes` when None, checked against C input channels."""
    bl = blocks or block_sizes(c, k)
    if bl.k > c or c % bl.k or min(bl.m, bl.n, bl.k) < 16:
        raise ValueError(f"blocks {tuple(bl)} do not fit {c} input channels")
    return bl


def reflect_conv3x3(
    x: Tensor,
    w_mat: Tensor,
    bias: Tensor,
    relu: bool,
    input_op: str = "none",
    blocks: Blocks | None = None,
) -> Tensor:
    """``conv3x3(reflect_pad1(op(x))) + bias`` (then ReLU) in one kernel.

    x: (B, C, H, W) in channels_last memory; ``op`` is ``none``, ``up2`` (nearest ×2) or
    ``pool2`` (2×2 max-pool, stride 2; H and W must be even). Returns (B, K, H', W') in
    channels_last memory, H' the size after ``op`` (at least 2 per side). ``blocks``: the
    launch configuration (default :func:`block_sizes`).
    """
    if input_op not in INPUT_OPS:
        raise ValueError(f"input_op must be one of {', '.join(INPUT_OPS)}, got {input_op!r}")
    b, c, hin, win = x.shape
    if input_op == "up2":
        h, w = 2 * hin, 2 * win
    elif input_op == "pool2":
        if hin % 2 or win % 2:
            raise ValueError(f"pool2 needs an even height and width, got {hin}x{win}")
        h, w = hin // 2, win // 2
    else:
        h, w = hin, win
    if h < 2 or w < 2:
        raise ValueError(f"reflection padding needs at least 2x2, got {h}x{w}")
    k = w_mat.shape[1]
    bl = _launch_blocks(blocks, c, k)
    if w_mat.shape[0] != 9 * c:
        raise ValueError(f"weight matrix {tuple(w_mat.shape)} does not match {c} input channels")
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.empty((b, k, h, w), device=x.device, dtype=x.dtype, memory_format=torch.channels_last)
    m = b * h * w
    grid = (triton.cdiv(m, bl.m), triton.cdiv(k, bl.n))
    _reflect_conv3x3_kernel[grid](
        x, w_mat, bias, y, m, h, w, hin, win, c, k,
        INPUT_OPS[input_op], relu, bl.m, bl.n, bl.k,
        num_warps=bl.warps, num_stages=bl.stages,
    )  # fmt: skip
    return y


def phase_weight_matrices(weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """(K, C, 3, 3) conv weight and bias (K,) → the phase kernel's (4, 4·C, K) matrices (row
    ``(u·2 + v)·C + c`` of phase ``2a + b``) and the bias, from
    :func:`models.functional.up2_conv3_phase_weights`."""
    k, c = weight.shape[:2]
    w4, _ = Fn.up2_conv3_phase_weights(weight, bias)  # (4·K, C, 2, 2) phase-major
    return w4.view(4, k, c, 2, 2).permute(0, 3, 4, 2, 1).reshape(4, 4 * c, k).contiguous(), bias


def up2_phase_conv(
    x: Tensor, w_phases: Tensor, bias: Tensor, relu: bool, blocks: Blocks | None = None
) -> Tensor:
    """``conv3x3(reflect_pad1(upsample_nearest_2x(x))) + bias`` (then ReLU) in one kernel that
    computes the four output phases at the input resolution (4/9 of the multiply-adds of
    :func:`reflect_conv3x3` with ``up2``) and stores them interleaved.

    x: (B, C, H, W) channels_last; ``w_phases`` from :func:`phase_weight_matrices`. Returns
    (B, K, 2H, 2W) channels_last. ``blocks`` as in :func:`reflect_conv3x3`.
    """
    b, c, hin, win = x.shape
    k = w_phases.shape[2]
    if w_phases.shape[:2] != (4, 4 * c):
        raise ValueError(f"phase weights {tuple(w_phases.shape)} do not match {c} input channels")
    bl = _launch_blocks(blocks, c, k)
    x = x.contiguous(memory_format=torch.channels_last)
    y = torch.empty(
        (b, k, 2 * hin, 2 * win), device=x.device, dtype=x.dtype, memory_format=torch.channels_last
    )
    m = b * hin * win
    grid = (triton.cdiv(m, bl.m), triton.cdiv(k, bl.n), 4)
    _up2_phase_conv_kernel[grid](
        x, w_phases, bias, y, m, hin, win, c, k, relu, bl.m, bl.n, bl.k,
        num_warps=bl.warps, num_stages=bl.stages,
    )  # fmt: skip
    return y


_TRITON_TYPES = {torch.float16: "fp16", torch.bfloat16: "bf16", torch.float32: "fp32"}


def compile_ahead(
    kernel: str,
    dtype: torch.dtype,
    c: int,
    k: int,
    relu: bool,
    input_op: str = "none",
    blocks: Blocks | None = None,
    arch: int = 90,
) -> object:
    """Compile one kernel specialisation for an NVIDIA GPU of compute capability ``arch``
    (90: H100) without a GPU, as the JIT would on the card: ``kernel`` is ``reflect`` or
    ``phases``, pointers 16-byte aligned and the channel counts marked divisible by 16 where
    they are (the JIT specialises on that). Returns Triton's compiled kernel (its ``asm``
    holds the PTX, its ``metadata.shared`` the shared memory per block)."""
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    bl = _launch_blocks(blocks, c, k)
    if kernel == "reflect":
        fn = _reflect_conv3x3_kernel
        consts: dict[str, int | bool] = {"INPUT_OP": INPUT_OPS[input_op], "RELU": relu}
    elif kernel == "phases":
        fn = _up2_phase_conv_kernel
        consts = {"RELU": relu}
    else:
        raise ValueError(f"kernel must be reflect or phases, got {kernel!r}")
    consts |= {"BLOCK_M": bl.m, "BLOCK_N": bl.n, "BLOCK_K": bl.k}
    # the kernel's own parameter list: pointers to dtype, the constexprs, the rest int32
    names = fn.arg_names
    ptr = f"*{_TRITON_TYPES[dtype]}"
    signature = {
        n: ptr if n.endswith("_ptr") else "constexpr" if n in consts else "i32" for n in names
    }
    sizes = {"C": c, "K": k}
    divisible = [n for n in names if n.endswith("_ptr") or sizes.get(n, 1) % 16 == 0]
    attrs = {(names.index(n),): [["tt.divisibility", 16]] for n in divisible}
    src = ASTSource(fn=fn, signature=signature, constexprs=consts, attrs=attrs)
    options = {"num_warps": bl.warps, "num_stages": bl.stages}
    return triton.compile(src, target=GPUTarget("cuda", arch, 32), options=options)


class TritonReflectConv(nn.Module):
    """``[MaxPool2d(2) | Upsample(2)] → ReflectionPad2d(1) → Conv2d(3×3) [→ ReLU]`` as one
    Triton kernel (see :func:`reflect_conv3x3`)."""

    def __init__(self, conv: nn.Conv2d, relu: bool, input_op: str) -> None:
        super().__init__()
        self.relu = relu
        self.input_op = input_op
        self.w_mat = nn.Parameter(conv_weight_matrix(conv.weight.detach()), requires_grad=False)
        self.bias = nn.Parameter(conv_bias(conv).clone(), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return reflect_conv3x3(x, self.w_mat, self.bias, self.relu, self.input_op)


class TritonUpConv(nn.Module):
    """``Upsample(2, nearest) → ReflectionPad2d(1) → Conv2d(3×3) [→ ReLU]`` as one Triton
    kernel over the four output phases (see :func:`up2_phase_conv`)."""

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        self.relu = relu
        w, b = phase_weight_matrices(conv.weight.detach(), conv_bias(conv))
        self.w_phases = nn.Parameter(w, requires_grad=False)
        self.bias = nn.Parameter(b.clone(), requires_grad=False)

    def forward(self, x: Tensor) -> Tensor:
        return up2_phase_conv(x, self.w_phases, self.bias, self.relu)


def _input_op(m: nn.Module) -> str | None:
    """``pool2`` / ``up2`` for the pooling and upsampling layers the kernel can absorb."""
    if isinstance(m, nn.MaxPool2d) and m.kernel_size in (2, (2, 2)) and m.stride in (2, (2, 2)):
        return "pool2" if m.padding in (0, (0, 0)) and m.dilation in (1, (1, 1)) else None
    if is_up2_nearest(m):
        return "up2"
    return None


def _kernel_fits(conv: nn.Conv2d) -> bool:
    """Whether the kernel computes this conv: 3×3, stride 1, unpadded, channels a multiple of 16."""
    return (
        conv.kernel_size == (3, 3)
        and conv.stride == (1, 1)
        and conv.padding == (0, 0)
        and conv.in_channels % MIN_CHANNELS == 0
    )


def build_triton_net(seq: nn.Sequential, up_phases: bool = False) -> nn.Sequential:
    """Copy of ``seq`` (flattened) with every ``[pool|upsample] → pad → 3×3 conv [→ ReLU]`` whose
    input channels are a multiple of :data:`MIN_CHANNELS` as a :class:`TritonReflectConv`
    (with ``up_phases``, the upsampling ones as a :class:`TritonUpConv`); the first RGB conv,
    with the 1×1 input conv folded into it, becomes a PyTorch :class:`ReflectConv`."""
    mods = flat_layers(seq)
    out: list[nn.Module] = []
    i = 0
    while i < len(mods):
        if (folded := match_folded_pad_conv(mods, i)) is not None:  # the encoder's RGB input
            conv, relu, used = folded
            fits = _kernel_fits(conv)
            out.append(TritonReflectConv(conv, relu, "none") if fits else _torch_layer(conv, relu))
            i += used
            continue
        op = _input_op(mods[i])
        j = i + 1 if op else i
        match = match_pad_conv(mods, j) if j < len(mods) else None
        if match is not None and _kernel_fits(match[0]):
            conv, relu = match
            if op == "up2" and up_phases:
                out.append(TritonUpConv(conv, relu))
            else:
                out.append(TritonReflectConv(conv, relu, op or "none"))
            i = j + (3 if relu else 2)
            continue
        if op is None and match is not None:  # a conv the kernel does not take
            out.append(_torch_layer(copy.deepcopy(match[0]), match[1]))
            i += 3 if match[1] else 2
            continue
        out.append(copy.deepcopy(mods[i]))
        i += 1
    return nn.Sequential(*out)


def _torch_layer(conv: nn.Conv2d, relu: bool) -> nn.Module:
    """A pad + conv the Triton kernel does not take (3 input channels) as a PyTorch
    :class:`ReflectConv`: slice-built padding, which keeps channels_last, and the fused ReLU."""
    return ReflectConv(conv, "cat", relu, fused=True)


def triton_networks(generator: CASTGenerator) -> dict[str, nn.Sequential]:
    """The generator's encoder, decoder and phase decoder as Triton networks (for the
    benchmark and compile scripts that look at every layer)."""
    enc, dec = generator_layers(generator)
    return {
        "encoder": build_triton_net(enc),
        "decoder": build_triton_net(dec),
        "decoder-phases": build_triton_net(dec, up_phases=True),
    }
