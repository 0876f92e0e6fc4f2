"""The device-resident stylizer: uint8 RGB frames in, stylized uint8 RGB frames out.

The only place that knows about devices, precision, memory formats, compilation and streams.

Frame-level API (numpy in, numpy out)::

    engine = StylizeEngine(generator, EngineConfig(device="cuda", precision="auto", resolution=720))
    out = engine.process(frame, code, alpha=1.0, preserve_color=False)   # uint8 (H, W, 3) RGB
    outs = engine.process_batch(frames, code, alpha, preserve_color)     # same-size frames

Tensor-level API (stay on the device between steps, e.g. for temporal smoothing)::

    x = engine.upload(frame)              # uint8 (H, W, 3) -> float32 (1, 3, H, W) in [-1, 1]
    y = engine.stylize_tensor(x, code)    # same size, ~[-1, 1] (unclamped), float32
    frame = engine.download(y)            # -> uint8 (H, W, 3), clamped and rounded

    u8 = engine.upload_uint8([frame])     # uint8 (1, H, W, 3) on the device
    out = engine.stylize_u8(u8, code)     # uint8 (1, H, W, 3) on the device (CUDA graph on CUDA)
    frames = engine.download_u8(out)      # -> list of uint8 (H, W, 3)

On CUDA the defaults are fp16, channels_last, ``torch.compile`` and one captured CUDA graph
per frame size (measured fastest on an H100, bench/RESULTS.md); eager CUDA uses border
padding with cuDNN's fused conv + ReLU. On CPU: bf16 where the CPU has it natively,
channels_last, eager oneDNN conv + ReLU, and the decoder's upsampling convs computed as four
2×2 output phases at the low resolution (:class:`UpConv`; measured faster, bench/RESULTS.md).

``engine.content_stats_hook`` is an optional callable ``(mean, std) -> (mean, std)`` applied
to the relu4_1 content statistics (float32, (B, 512, 1, 1)) before AdaIN (temporal ``stats``
smoothing uses it).

The engine snapshots the generator's weights into its own network at construction (cast to
the working precision and memory format); call :meth:`StylizeEngine.reload` after changing
the generator's weights. Style codes live on the device in a small cache keyed by the code
object, so switching style or strength between two frames costs nothing and never recompiles.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models import functional as Fn
from models.errors import CastRTError, InputError
from models.generator import CASTGenerator
from models.style_code import StyleCode

StatsHook = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "mixed")
PAD_MODES = ("auto", "module", "cat", "border")
SWITCH_MODES = ("auto", "on", "off")  # fuse_relu, cuda_graph, centre_activations
FUSE_MODES = GRAPH_MODES = CENTRE_MODES = SWITCH_MODES
CONV_IMPLS = ("torch", "triton")
UPCONV_MODES = ("auto", "phases", "plain")
COMPILE_MODES = (
    "auto",
    "off",
    "default",
    "reduce-overhead",
    "max-autotune",
    "max-autotune-no-cudagraphs",
)
_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_CODE_CACHE_SIZE = 32
_RECOMPILE_LIMIT = 64  # compiled sizes × engines (all share nn.Sequential.forward's cache)
_OOM_FLOOR = 144  # the lowest processing resolution an out-of-memory error suggests
_GRAPH_CACHE_SIZE = 3  # captured frame sizes kept (each holds its own activation memory)


class EngineOutOfMemoryError(CastRTError):
    """The device ran out of memory at a processing resolution; lower ``--resolution``.

    ``size`` is the (H, W) that was being processed and ``suggested`` a lower processing
    resolution to try (0: none lower is sensible), so a caller (live mode) can step down.
    """

    def __init__(self, message: str, size: tuple[int, int], suggested: int = 0) -> None:
        super().__init__(message)
        self.size = size
        self.suggested = suggested


@dataclass(frozen=True)
class EngineConfig:
    """How the engine runs.

    ``resolution``: processing shorter side in pixels (0: native). ``precision``: fp32, bf16,
    fp16, auto (fp16 on CUDA; bf16 on a CPU with native bf16, else fp32) or mixed (an fp32
    encoder, whose AdaIN statistics stay exact on flat content, and a bf16 decoder on CPU or
    fp16 on CUDA).
    ``channels_last``: None picks it (on for CPU and for reduced precision on CUDA).
    ``pad_mode``: how the reflection padding before each 3×3 conv is done (see
    :class:`ReflectConv`): ``module``, ``cat``, ``border`` or ``auto`` (border for eager
    CUDA, else module); all compute the reference function.
    ``fuse_relu``: conv + ReLU as one primitive: oneDNN on CPU, cuDNN
    ``cudnn_convolution_relu`` on CUDA (auto: on for eager CPU and for eager CUDA with
    border padding).
    ``compile``: torch.compile mode for encoder and decoder (auto: ``default`` on CUDA,
    off on CPU).
    ``threads``: CPU threads (0: leave torch's default, all physical cores).
    ``streams``: overlap upload, compute and download across frames of a CUDA batch.
    ``cuda_graph``: capture the whole frame (uint8 in → uint8 out) as one CUDA graph per
    frame size and replay it (auto: on for CUDA unless ``compile=reduce-overhead``); CPU
    ignores it.
    ``upsample_conv``: how the decoder's nearest 2× upsampling + 3×3 conv runs: ``phases``
    computes it at the low resolution as one 2×2 conv per output phase (:class:`UpConv`, 4/9
    of the multiply-adds, exact), ``plain`` as the reference does (auto: phases on CPU, where
    it is measured faster; plain on CUDA until measured there). With ``conv_impl=triton``,
    phases selects the Triton phase kernel.
    ``conv_impl``: ``torch`` (cuDNN / oneDNN) or ``triton``: one Triton kernel per 3×3 layer
    with reflection padding, pooling/upsampling, bias and ReLU fused (realtime.triton_conv;
    correct, not yet measured on a GPU, so not the default; no torch.compile with it).
    ``centre_activations``: hold a reduced-precision network's activations as remainders
    around per-channel float32 offsets (:class:`CentredNet`), so flat content keeps its small
    variations through AdaIN: ``auto`` centres a bf16 encoder, ``on`` every bf16 or fp16
    half (the decoder too), ``off`` none; ``conv_impl=torch`` only.
    """

    device: str = "cpu"
    precision: str = "fp32"
    resolution: int = 0
    channels_last: bool | None = None
    pad_mode: str = "auto"
    fuse_relu: str = "auto"
    compile: str = "auto"
    threads: int = 0
    streams: bool = True
    cuda_graph: str = "auto"
    conv_impl: str = "torch"
    upsample_conv: str = "auto"
    centre_activations: str = "auto"

    def __post_init__(self) -> None:
        for name, allowed in (
            ("precision", PRECISIONS),
            ("pad_mode", PAD_MODES),
            ("fuse_relu", FUSE_MODES),
            ("cuda_graph", GRAPH_MODES),
            ("conv_impl", CONV_IMPLS),
            ("upsample_conv", UPCONV_MODES),
            ("centre_activations", CENTRE_MODES),
        ):
            self._check_choice(name, allowed)
        if self.conv_impl == "triton" and self.compile not in ("auto", "off"):
            raise InputError("conv_impl=triton runs its own kernels; use it with compile=off")
        if self.cuda_graph == "on" and self.compile == "reduce-overhead":
            raise InputError(
                "cuda_graph=on and compile=reduce-overhead both capture CUDA graphs; pick one"
            )
        self._check_choice("compile", COMPILE_MODES)
        if self.resolution < 0:
            raise InputError(f"resolution must be >= 0 (0: native), got {self.resolution}")
        if self.threads < 0:
            raise InputError(f"threads must be >= 0 (0: all cores), got {self.threads}")

    def _check_choice(self, name: str, allowed: tuple[str, ...]) -> None:
        value = getattr(self, name)
        if value not in allowed:
            raise InputError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def cpu_bf16_supported() -> bool:
    """Whether this CPU runs bf16 convolutions natively (oneDNN avx512_bf16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def require_triton(device: torch.device) -> None:
    """Raise a one-line InputError unless Triton kernels can run on ``device``.

    CUDA with the ``triton`` package; on the CPU only through Triton's interpreter
    (``TRITON_INTERPRET=1``, for tests).
    """
    try:
        import triton  # noqa: F401
    except ImportError:
        raise InputError("conv_impl=triton needs the triton package (pip install triton)") from None
    if device.type != "cuda" and os.environ.get("TRITON_INTERPRET") != "1":
        raise InputError("conv_impl=triton needs a CUDA device (TRITON_INTERPRET=1 emulates it)")


def resolve_compile(mode: str, device: torch.device) -> str:
    """``auto`` → ``default`` on CUDA (measured fastest, see bench/RESULTS.md), off on CPU."""
    if mode != "auto":
        return mode
    return "default" if device.type == "cuda" else "off"


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → the fastest measured-correct precision for the device (see docs/engine.md)."""
    if precision != "auto":
        if device.type == "cpu" and precision == "fp16":
            raise InputError("precision fp16 is not supported on CPU; use bf16 or fp32")
        if device.type == "cpu" and precision == "mixed" and not cpu_bf16_supported():
            raise InputError("precision mixed needs a CPU with native bf16; use fp32")
        return precision
    if device.type == "cuda":
        return "fp16"
    return "bf16" if cpu_bf16_supported() else "fp32"


# --- the inference network ---------------------------------------------------------------------


def reflect_pad1_cat(x: Tensor) -> Tensor:
    """Reflection padding by one pixel on each side of (B, C, H, W), built from slices.

    Equal to ``F.pad(x, (1, 1, 1, 1), mode="reflect")`` but keeps the memory format
    (channels_last stays channels_last), so no layout conversion happens around the conv.
    """
    x = torch.cat([x[:, :, 1:2], x, x[:, :, -2:-1]], dim=2)  # (B, C, H+2, W)
    return torch.cat([x[:, :, :, 1:2], x, x[:, :, :, -2:-1]], dim=3)  # (B, C, H+2, W+2)


def mkldnn_fused_conv_available() -> bool:
    """Whether oneDNN's conv with a fused ReLU (``mkldnn::_convolution_pointwise``) exists."""
    try:
        return hasattr(torch.ops.mkldnn, "_convolution_pointwise") and bool(
            torch.backends.mkldnn.is_available()
        )
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return False


def conv_act(
    x: Tensor,
    conv: nn.Conv2d,
    padding: int,
    relu: bool,
    fused: bool,
    bias: Tensor | None = None,
) -> Tensor:
    """``conv`` (stride 1) with zero ``padding``, then ReLU when ``relu``; ``fused``: as one
    primitive (oneDNN's conv + ReLU on CPU, cuDNN's on CUDA) instead of a ReLU pass.

    ``bias``: used instead of the conv's own; oneDNN adds a float32 one to reduced-precision
    data as it is, the other paths cast it to ``x``'s dtype.
    """
    w, b = conv.weight, conv.bias if bias is None else bias
    p, one = [padding, padding], [1, 1]
    if fused and not x.is_cuda:
        attr = "relu" if relu else "none"
        return torch.ops.mkldnn._convolution_pointwise(x, w, b, p, one, one, 1, attr, [], "")
    b = None if b is None else b.to(x.dtype)
    if fused and relu and x.is_cuda:
        return torch.cudnn_convolution_relu(x, w, b, one, p, one, 1)
    y = F.conv2d(x, w, b, padding=padding)
    return F.relu(y, inplace=True) if relu else y


class ShiftableConv(nn.Module):
    """A conv layer (+ ReLU) that can also run with another bias and without its ReLU, as
    :class:`CentredNet` needs. Subclasses set ``conv`` (its output channels are ``phases``
    groups of the layer's), ``relu`` and ``fused``, and compute ``_run``."""

    conv: nn.Conv2d
    relu: bool
    fused: bool
    phases = 1

    def _run(self, x: Tensor, bias: Tensor | None, relu: bool) -> Tensor:
        """The layer on :meth:`conv_input`'s result; ``bias`` None: the conv's own."""
        raise NotImplementedError

    def conv_input(self, x: Tensor) -> Tensor:
        """The tensor whose channels the conv's weights see (``x`` itself, unless overridden)."""
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self._run(self.conv_input(x), None, self.relu)

    def pre_activation(self, x: Tensor, bias: Tensor) -> Tensor:
        """The layer on :meth:`conv_input`'s result ``x`` with ``bias`` (one per conv output
        channel) instead of the conv's own, and without its ReLU."""
        return self._run(x, bias, False)


class ReflectConv(ShiftableConv):
    """``ReflectionPad2d(1)`` + 3×3 ``Conv2d`` (+ the following ``ReLU``) as one module.

    ``pad_mode`` picks how the reflection padding is done; all give the reference numbers:

    * ``module``: ``F.pad(x, (1, 1, 1, 1), "reflect")`` then the conv, as the reference;
    * ``cat``: the padded tensor built from slices with ``torch.cat`` (keeps channels_last);
    * ``border``: a zero-padded conv over the whole frame (no padded copy at all), then the
      four one-pixel output borders recomputed from reflect-padded strips.

    ``fused``: conv + ReLU as one primitive (oneDNN on CPU, cuDNN on CUDA), no ReLU pass.
    """

    def __init__(self, conv: nn.Conv2d, pad_mode: str, relu: bool, fused: bool) -> None:
        super().__init__()
        self.conv = conv
        self.pad_mode = pad_mode
        self.relu = relu
        self.fused = fused

    def _conv(self, x: Tensor, padding: int, bias: Tensor | None, relu: bool) -> Tensor:
        return conv_act(x, self.conv, padding, relu, self.fused, bias)

    def _fix_borders(self, x: Tensor, y: Tensor, bias: Tensor | None, relu: bool) -> None:
        """Overwrite the one-pixel border of ``y`` (B, C', H, W) with the reflect-padded result.

        Along rows (then columns), the padded rows 0..2 ([1, 0, 1]) and H-1..H+1 ([H-2, H-1,
        H-2]) are stacked into one six-row strip, reflect-padded across; its valid conv gives
        four rows, of which the first is the top border and the last the bottom one (the
        middle two straddle both and are dropped). Few, small kernels per layer.
        """
        for dim, across in ((2, (1, 1, 0, 0)), (3, (0, 0, 1, 1))):
            n = x.shape[dim]
            parts = [(1, 1), (0, 2), (n - 2, 2), (n - 2, 1)]  # (start, length): six rows
            strip = torch.cat([x.narrow(dim, i, k) for i, k in parts], dim=dim)
            r = self._conv(F.pad(strip, across, mode="reflect"), 0, bias, relu)  # four of them
            y.narrow(dim, 0, 1).copy_(r.narrow(dim, 0, 1))
            y.narrow(dim, n - 1, 1).copy_(r.narrow(dim, 3, 1))

    def _run(self, x: Tensor, bias: Tensor | None, relu: bool) -> Tensor:
        if self.pad_mode == "border" and min(x.shape[-2], x.shape[-1]) >= 2:
            y = self._conv(x, 1, bias, relu)  # (B, C', H, W), borders wrong (zero padding)
            self._fix_borders(x, y, bias, relu)
            return y
        if self.pad_mode == "cat":
            return self._conv(reflect_pad1_cat(x), 0, bias, relu)
        return self._conv(F.pad(x, (1, 1, 1, 1), mode="reflect"), 0, bias, relu)


def match_pad_conv(mods: Sequence[nn.Module], i: int) -> tuple[nn.Conv2d, bool] | None:
    """``(conv, relu)`` when ``mods[i:]`` starts with ``ReflectionPad2d(1)`` + ``Conv2d``
    (+ ``ReLU``, then ``relu`` is True), else None."""
    if i >= len(mods):
        return None
    m = mods[i]
    if not (
        isinstance(m, nn.ReflectionPad2d)
        and tuple(m.padding) == (1, 1, 1, 1)
        and i + 1 < len(mods)
        and isinstance(conv := mods[i + 1], nn.Conv2d)
    ):
        return None
    return conv, i + 2 < len(mods) and isinstance(mods[i + 2], nn.ReLU)


class UpConv(ShiftableConv):
    """Nearest 2× ``Upsample`` + ``ReflectionPad2d(1)`` + 3×3 ``Conv2d`` (+ ``ReLU``) computed at
    the input resolution (:func:`models.functional.up2_conv3`): one 2×2 conv whose channels
    are the four output phases (4/9 of the multiply-adds), then one interleaving copy."""

    phases = 4  # the conv's channels: four phase-major groups of the output channels

    def __init__(self, conv: nn.Conv2d, relu: bool, fused: bool) -> None:
        super().__init__()
        w4, b4 = Fn.up2_conv3_phase_weights(conv.weight.detach(), conv_bias(conv))
        self.conv = _conv_with(w4, b4)
        self.relu = relu
        self.fused = fused

    def _run(self, x: Tensor, bias: Tensor | None, relu: bool) -> Tensor:
        z = conv_act(Fn.replicate_pad1(x), self.conv, 0, relu, self.fused, bias)  # (B, 4·O, ..)
        return Fn.interleave_phases(z)  # (B, O, 2H, 2W)


def conv_bias(conv: nn.Conv2d) -> Tensor:
    """The conv's bias, detached (zeros for a conv without one)."""
    if conv.bias is None:
        return conv.weight.detach().new_zeros(conv.out_channels)
    return conv.bias.detach()


def _conv_with(weight: Tensor, bias: Tensor) -> nn.Conv2d:
    """A stride-1, unpadded ``Conv2d`` holding (copies of) ``weight`` and ``bias``."""
    out_ch, in_ch, kh, kw = weight.shape
    conv = nn.Conv2d(in_ch, out_ch, (kh, kw), device=weight.device, dtype=weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(weight)
        assert conv.bias is not None
        conv.bias.copy_(bias)
    return conv


def is_up2_nearest(m: nn.Module) -> bool:
    """Whether ``m`` is a nearest-neighbour ×2 ``Upsample``."""
    return (
        isinstance(m, nn.Upsample)
        and m.mode == "nearest"
        and m.size is None
        and m.scale_factor in (2, 2.0, (2.0, 2.0), (2, 2))
    )


def _is_pointwise(m: nn.Module) -> bool:
    return (
        isinstance(m, nn.Conv2d)
        and tuple(m.kernel_size) == (1, 1)
        and tuple(m.stride) == (1, 1)
        and tuple(m.padding) == (0, 0)
        and m.groups == 1
        and m.bias is not None
    )


def match_folded_pad_conv(mods: Sequence[nn.Module], i: int) -> tuple[nn.Conv2d, bool, int] | None:
    """``(conv, relu, n)`` when ``mods[i:]`` is a 1×1 ``Conv2d`` + ``ReflectionPad2d(1)`` +
    ``Conv2d`` (+ ``ReLU``): ``conv`` is a new conv computing both convs
    (:func:`models.functional.fold_pointwise_into_conv`), ``n`` the modules it replaces."""
    m = mods[i]
    if not _is_pointwise(m) or (match := match_pad_conv(mods, i + 1)) is None:
        return None
    conv, relu = match
    assert isinstance(m, nn.Conv2d) and m.bias is not None
    w, b = Fn.fold_pointwise_into_conv(m.weight, m.bias, conv.weight, conv_bias(conv))
    return _conv_with(w.detach(), b.detach()), relu, 4 if relu else 3


def fuse_reflect_convs(
    seq: nn.Sequential, pad_mode: str, fused: bool = False, up_phases: bool = False
) -> nn.Sequential:
    """Copy of ``seq`` for inference, computing the same function with fewer passes.

    * ``ReflectionPad2d(1)`` + ``Conv2d`` (+ ``ReLU``) → :class:`ReflectConv`;
    * a 1×1 ``Conv2d`` right before one is folded into its weights (the encoder's first
      layer, :func:`models.functional.fold_pointwise_into_conv`);
    * with ``up_phases``, nearest 2× ``Upsample`` before one → :class:`UpConv`;
    * other ReLUs become in-place.
    """
    layers: list[nn.Module] = []
    mods = list(seq)
    i = 0
    while i < len(mods):
        m = mods[i]
        if isinstance(m, nn.Sequential):
            layers.append(fuse_reflect_convs(m, pad_mode, fused, up_phases))
        elif (folded := match_folded_pad_conv(mods, i)) is not None:
            conv, relu, used = folded
            layers.append(ReflectConv(conv, pad_mode, relu, fused))
            i += used - 1
        elif up_phases and is_up2_nearest(m) and (match := match_pad_conv(mods, i + 1)) is not None:
            conv, relu = match
            layers.append(UpConv(conv, relu, fused))
            i += 3 if relu else 2
        elif (match := match_pad_conv(mods, i)) is not None:
            conv, relu = match
            layers.append(ReflectConv(copy.deepcopy(conv), pad_mode, relu, fused))
            i += 2 if relu else 1
        elif isinstance(m, nn.ReLU):
            layers.append(nn.ReLU(inplace=True))
        else:
            layers.append(copy.deepcopy(m))
        i += 1
    return nn.Sequential(*layers)


def generator_layers(generator: CASTGenerator) -> tuple[nn.Sequential, nn.Sequential]:
    """The generator's encoder (relu1_1 … relu4_1) and Dec_B as two plain Sequentials
    (sharing the generator's modules; the inference builders copy them)."""
    enc = nn.Sequential(
        generator.encoder.enc_1,
        generator.encoder.enc_2,
        generator.encoder.enc_3,
        generator.encoder.enc_4,
    )
    return enc, generator.dec_b.decoder


class SplitInputConv(ShiftableConv):
    """The encoder's first layer (pad + 3×3 conv + ReLU on the RGB image) for a bf16 engine,
    as accurate as fp32 at bf16 speed.

    bf16 keeps 8 significant bits, so both the image and the first conv's weights (the 1×1
    input conv folded in) lose precision. Here each is split into a bf16 high part and a bf16
    remainder, ``x ≈ xh + xl`` and ``w ≈ wh + wl``, and one 9-channel bf16 conv with fp32
    accumulation computes ``xh·wh + xl·wh + xh·wl``. Measured on a real photo with the reference
    fixture weights (bench/RESULTS.md): candy style, 99.88 → 99.96 % of pixels within 3 levels.
    Takes the float32 image (B, 3, H, W); returns bf16.
    """

    def __init__(self, layer: ReflectConv) -> None:
        super().__init__()
        w = layer.conv.weight.detach().float()
        wh = Fn.round_to_dtype(w, torch.bfloat16)
        wl = Fn.round_to_dtype(w - wh, torch.bfloat16)
        self.conv = _conv_with(torch.cat([wh, wh, wl], dim=1), conv_bias(layer.conv).float())
        self.relu = layer.relu
        self.fused = layer.fused

    def conv_input(self, x: Tensor) -> Tensor:
        """The float image (B, 3, H, W) → the padded, split bf16 input (B, 9, H+2, W+2)."""
        xp = F.pad(x.float().contiguous(), (1, 1, 1, 1), mode="reflect")  # NCHW: the fast pad
        xh = Fn.round_to_dtype(xp, torch.bfloat16)  # also under torch.compile (see there)
        x9 = torch.cat([xh, xp - xh, xh], dim=1).to(torch.bfloat16)
        return x9.contiguous(memory_format=Fn.memory_format_of(self.conv.weight))

    def _run(self, x9: Tensor, bias: Tensor | None, relu: bool) -> Tensor:
        return conv_act(x9, self.conv, 0, relu, self.fused, bias)


def split_input_layer(enc: nn.Sequential) -> nn.Sequential:
    """``enc`` with its first layer (a :class:`ReflectConv`, possibly inside nested
    Sequentials) as a :class:`SplitInputConv`."""
    first, rest = enc[0], list(enc)[1:]
    if isinstance(first, nn.Sequential):
        return nn.Sequential(split_input_layer(first), *rest)
    if not isinstance(first, ReflectConv):
        raise ValueError(f"the encoder starts with {type(first).__name__}, not a ReflectConv")
    return nn.Sequential(SplitInputConv(first), *rest)


def flat_layers(seq: nn.Sequential) -> list[nn.Module]:
    """The modules of ``seq`` with nested Sequentials expanded, in order."""
    out: list[nn.Module] = []
    for m in seq:
        out += flat_layers(m) if isinstance(m, nn.Sequential) else [m]
    return out


PASS_THROUGH = (nn.MaxPool2d, nn.Upsample)  # commute with a per-channel offset and threshold


class CentredNet(nn.Module):
    """A reduced-precision encoder or decoder whose activations are held as remainders around
    per-channel float32 offsets; float32 in, float32 out.

    In bf16 a channel that is nearly constant over the frame (a flat sky, a wall) keeps
    almost nothing of its variation: the rounding error is relative to the channel's level.
    AdaIN divides by that small variation, so the error grows to whole output levels. Here
    each activation is ``a = s + offset``: ``offset`` (C,) is the channel's estimated mean
    (float32, from :func:`models.functional.subsampled_channel_mean`) and only the remainder
    ``s`` is stored in bf16, so its error is relative to the variation. Each conv runs on
    ``s`` with a bias that accounts for the offset (:func:`models.functional.
    centred_conv_terms`), and the ReLU becomes ``max(s, -offset)``, applied after a following
    max-pool or upsampling (they commute) where there is one. Offsets are shared by a batch.

    Same function as the network up to rounding (exact in float32, tested). Measured with the
    reference fixture weights on the flattest window of each of 12 photos × 12 styles
    (bench/RESULTS.md).

    Built from the float32 network of :class:`ReflectConv`, :class:`SplitInputConv`,
    :class:`UpConv`, max-pool and nearest-upsampling layers; it casts its layers to ``dtype``
    itself and keeps its float32 terms, so move it with ``.to(device)`` only.
    """

    def __init__(self, net: nn.Sequential, dtype: torch.dtype, stride: int = 4) -> None:
        super().__init__()
        layers = flat_layers(net)
        for m in layers:
            nearest = not isinstance(m, nn.Upsample) or m.mode == "nearest"
            if not isinstance(m, (ShiftableConv, *PASS_THROUGH)) or not nearest:
                raise ValueError(f"CentredNet cannot run a {type(m).__name__} layer")
        convs = [m for m in layers if isinstance(m, ShiftableConv)]
        biases = [conv_bias(m.conv).float().clone() for m in convs]  # before the cast
        self.layers = nn.ModuleList(layers).to(dtype)
        self.dtype = dtype
        self.stride = stride
        for i, (m, b) in enumerate(zip(convs, biases, strict=True)):
            self.register_buffer(f"bias{i}", b)
            # the weights as cast, summed over their taps (O, C)
            self.register_buffer(f"weight_sum{i}", m.conv.weight.detach().float().sum((2, 3)))

    def _centre_input(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """(remainder, offset) of the float32 input; a :class:`SplitInputConv` splits the
        image exactly itself (offset None: zero for its input channels)."""
        if isinstance(self.layers[0], SplitInputConv):
            return x, None
        offset = Fn.subsampled_channel_mean(x, self.stride)
        return (x.float() - offset.view(1, -1, 1, 1)).to(self.dtype), offset

    def forward(self, x: Tensor) -> Tensor:
        s, offset = self._centre_input(x)
        threshold: Tensor | None = None  # a ReLU still to apply to s
        i = 0
        for layer in self.layers:
            if isinstance(layer, PASS_THROUGH):
                s = layer(s)
                continue
            assert isinstance(layer, ShiftableConv)
            if threshold is not None:
                s = s.clamp_min_(threshold)
            s = layer.conv_input(s)
            if offset is None:
                offset = s.new_zeros(s.shape[1], dtype=torch.float32)
            bias, offset = Fn.centred_conv_terms(
                getattr(self, f"weight_sum{i}"),
                getattr(self, f"bias{i}"),
                offset,
                Fn.subsampled_channel_mean(s, self.stride),
                self.dtype,
                layer.phases,
            )
            s = layer.pre_activation(s, bias)
            threshold = (-offset).to(s.dtype).view(1, -1, 1, 1) if layer.relu else None
            i += 1
        if threshold is not None:
            s = s.clamp_min_(threshold)
        assert offset is not None, "a network without convs"
        return s.float() + offset.view(1, -1, 1, 1)


def build_inference_net(
    generator: CASTGenerator, pad_mode: str, fused: bool = False, up_phases: bool = False
) -> tuple[nn.Sequential, nn.Sequential]:
    """(encoder, decoder) copies of the generator's encoder and Dec_B for inference
    (:func:`fuse_reflect_convs`)."""
    enc_layers, dec_layers = generator_layers(generator)
    enc = fuse_reflect_convs(enc_layers, pad_mode, fused, up_phases)
    dec = fuse_reflect_convs(dec_layers, pad_mode, fused, up_phases)
    return enc.eval().requires_grad_(False), dec.eval().requires_grad_(False)


def count_conv_flops(generator: CASTGenerator, height: int = 256, width: int = 256) -> float:
    """FLOPs (2 per multiply-add) of the generator's convolutions per input pixel.

    Counted by running encoder + Dec_B once on a (1, 3, H, W) input with hooks on every conv.
    """
    total = 0

    def hook(m: nn.Module, _inp: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        assert isinstance(m, nn.Conv2d)
        k = m.kernel_size[0] * m.kernel_size[1]
        total += 2 * (m.in_channels // m.groups) * k * out.numel()

    handles = [
        m.register_forward_hook(hook)
        for m in [*generator.encoder.modules(), *generator.dec_b.modules()]
        if isinstance(m, nn.Conv2d)
    ]
    try:
        with torch.inference_mode():
            p = next(generator.parameters())
            x = torch.zeros(1, 3, height, width, device=p.device, dtype=p.dtype)
            generator.dec_b(generator.encode(x))
    finally:
        for h in handles:
            h.remove()
    return total / (height * width)


# --- sizes ----------------------------------------------------------------------------------------


def allow_recompiles() -> None:
    """Raise TorchDynamo's per-function recompile limit to :data:`_RECOMPILE_LIMIT`.

    Encoder and decoder of every compiled engine are ``nn.Sequential``s, so they share one
    Dynamo cache entry list; with the default limit (8) the ninth (engine, size) pair would
    silently run eagerly (measured: 4K at 170 ms instead of 24 ms). Never lowers it.
    """
    cfg = torch._dynamo.config
    name = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"
    setattr(cfg, name, max(int(getattr(cfg, name)), _RECOMPILE_LIMIT))


def check_alpha(alpha: float) -> None:
    """Refuse a style strength outside [0, 1] with a one-line InputError."""
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"style strength alpha must be in [0, 1], got {alpha}")


def processing_size(h: int, w: int, resolution: int) -> tuple[int, int]:
    """The (H, W) a frame of (h, w) is processed at: shorter side ``resolution`` (0: native).

    Frames already at or below the resolution are processed natively (never upscaled).
    """
    if resolution <= 0 or min(h, w) <= resolution:
        return h, w
    s = resolution / min(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _read_only_view(a: np.ndarray) -> Tensor:
    """A tensor sharing ``a``'s memory, for reading only (the engine never writes into a frame).

    Frames from decoders are often read-only arrays; torch warns about those, and a copy per
    frame would only cost time, so the warning is silenced here.
    """
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(a)


def _as_hwc_uint8(frame: np.ndarray | Tensor) -> Tensor:
    """Validate one uint8 (H, W, 3) frame (numpy or tensor) and return it as a CPU/any tensor."""
    t = _read_only_view(frame) if isinstance(frame, np.ndarray) else frame
    if not isinstance(t, Tensor):
        raise InputError(f"a frame must be a numpy array or a tensor, got {type(frame).__name__}")
    if t.dtype != torch.uint8 or t.dim() != 3 or t.shape[2] != 3:
        raise InputError(
            f"a frame must be uint8 RGB of shape (H, W, 3), got {t.dtype} {tuple(t.shape)}"
        )
    if t.shape[0] < 1 or t.shape[1] < 1:
        raise InputError(f"a frame must not be empty, got {tuple(t.shape)}")
    return t


# --- the engine -----------------------------------------------------------------------------------


class StylizeEngine:
    """Stylizes uint8 RGB frames of any size on one device; output has the input's size."""

    def __init__(self, generator: CASTGenerator, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()
        self.device = torch.device(self.config.device)
        if self.device.type == "cuda":
            if not torch.cuda.is_available():
                raise InputError(
                    "device cuda: no CUDA device is available on this machine; use cpu"
                )
            if self.device.index is None:
                self.device = torch.device("cuda", torch.cuda.current_device())
        if self.config.threads and self.device.type == "cpu":
            torch.set_num_threads(self.config.threads)
        self.precision = resolve_precision(self.config.precision, self.device)
        # mixed: fp32 encoder, reduced-precision decoder (fp16 on CUDA, bf16 on CPU)
        half = "fp16" if self.device.type == "cuda" else "bf16"
        self.enc_dtype = _DTYPES["fp32" if self.precision == "mixed" else self.precision]
        self.dtype = _DTYPES[half if self.precision == "mixed" else self.precision]
        cl = self.config.channels_last
        if cl is None:  # measured faster on CPU at every precision (pooling, padding in NHWC)
            cl = self.device.type == "cpu" or self.precision != "fp32"
        self.channels_last = cl
        self.conv_impl = self.config.conv_impl
        if self.conv_impl == "triton":
            require_triton(self.device)
        self.compile = (
            "off"
            if self.conv_impl == "triton"
            else resolve_compile(self.config.compile, self.device)
        )
        pad = self.config.pad_mode
        eager = self.compile == "off"
        cuda = self.device.type == "cuda"
        if pad == "auto":  # eager CUDA reflect-pad in channels_last is slow (design.md)
            pad = "border" if cuda and eager else "module"
        self.pad_mode = pad
        fuse = self.config.fuse_relu
        if self.device.type == "cpu":
            cpu_ok = mkldnn_fused_conv_available()
            if fuse == "on" and not cpu_ok:
                raise InputError("fuse_relu=on needs a CPU device with oneDNN (mkldnn)")
            self.fused = cpu_ok and (fuse == "on" or (fuse == "auto" and eager))
        else:
            self.fused = fuse == "on" or (fuse == "auto" and eager and pad == "border")
        up = self.config.upsample_conv
        self.up_phases = up == "phases" or (up == "auto" and not cuda)
        if self.conv_impl == "triton":  # padding, upsampling and ReLU happen inside its kernels
            self.pad_mode, self.fused = "module", False
        self.split_input = self.enc_dtype == torch.bfloat16  # see SplitInputConv
        centre = self.config.centre_activations
        torch_convs = self.conv_impl == "torch"
        reduced = [d != torch.float32 for d in (self.enc_dtype, self.dtype)]
        if centre == "on" and not (torch_convs and any(reduced)):
            raise InputError(
                "centre_activations=on needs a bf16 or fp16 network with conv_impl=torch"
            )
        # auto: the bf16 encoder, whose rounding AdaIN amplifies on flat content; on: every
        # reduced-precision half (the decoder gains less for its cost, bench/RESULTS.md)
        self.centred_encoder = torch_convs and (
            (centre == "on" and reduced[0])
            or (centre == "auto" and self.enc_dtype == torch.bfloat16)
        )
        self.centred_decoder = torch_convs and centre == "on" and reduced[1]
        graph = self.config.cuda_graph
        self.use_graph = cuda and (
            graph == "on" or (graph == "auto" and self.compile != "reduce-overhead")
        )
        self.generator = generator.to(self.device).eval()
        self.content_stats_hook: StatsHook | None = None
        self._codes: OrderedDict[int, tuple[StyleCode, Tensor, Tensor]] = OrderedDict()
        self._pinned: dict[tuple[int, ...], Tensor] = {}
        self._graphs: OrderedDict[tuple[object, ...], FrameGraph] = OrderedDict()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        self.reload()

    # --- setup ---------------------------------------------------------------------------------

    def reload(self) -> None:
        """Rebuild the inference network from the generator's current weights."""
        if self.conv_impl == "triton":
            from realtime.triton_conv import build_triton_net

            enc_layers, dec_layers = generator_layers(self.generator)
            enc = build_triton_net(enc_layers).eval().requires_grad_(False)
            dec = build_triton_net(dec_layers, self.up_phases).eval().requires_grad_(False)
        else:
            enc, dec = build_inference_net(
                self.generator, self.pad_mode, self.fused, self.up_phases
            )
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        if self.split_input:
            enc = split_input_layer(enc)
        encoder = self._place(enc, self.enc_dtype, self.centred_encoder, fmt)
        decoder = self._place(dec, self.dtype, self.centred_decoder, fmt)
        self._enc_module, self._dec_module = encoder, decoder
        self._encoder: Callable[[Tensor], Tensor] = encoder
        self._decoder: Callable[[Tensor], Tensor] = decoder
        if self.compile != "off":
            mode = None if self.compile == "default" else self.compile
            # CPU: freezing folds the (constant) weights into the graph, so Inductor prepacks
            # them for oneDNN and fuses conv + ReLU (measured faster, docs/engine.md)
            opts: dict[str, str | int | bool | Callable[..., object]] | None = (
                {"freezing": True} if self.device.type == "cpu" and mode is None else None
            )
            allow_recompiles()
            self._encoder = torch.compile(encoder, mode=mode, dynamic=False, options=opts)
            self._decoder = torch.compile(decoder, mode=mode, dynamic=False, options=opts)
        self._codes.clear()
        self._graphs.clear()

    def _place(
        self, net: nn.Sequential, dtype: torch.dtype, centred: bool, fmt: torch.memory_format
    ) -> nn.Module:
        """``net`` on the engine's device in ``dtype`` and ``fmt``; with ``centred`` as a
        :class:`CentredNet` (which casts its own layers and keeps its float32 terms)."""
        if centred:
            return CentredNet(net, dtype).to(device=self.device).to(memory_format=fmt)
        return net.to(device=self.device, dtype=dtype).to(memory_format=fmt)

    def set_resolution(self, resolution: int) -> None:
        """Change the processing shorter side (0: native) between frames, e.g. after an
        :class:`EngineOutOfMemoryError`; nothing is rebuilt (a compiled engine compiles the
        new size once)."""
        self.config = dataclasses.replace(self.config, resolution=resolution)

    def describe(self) -> str:
        """One line naming the configuration actually used (for logs and benchmarks)."""
        layout = "channels_last" if self.channels_last else "nchw"
        extra = f", compile={self.compile}" if self.compile != "off" else ""
        res = f"{self.config.resolution}p" if self.config.resolution else "native"
        threads = f", {torch.get_num_threads()} threads" if self.device.type == "cpu" else ""
        fused = (
            " conv=triton" if self.conv_impl == "triton" else "+fused-relu" if self.fused else ""
        )
        fused += " up=phases" if self.up_phases else ""
        fused += " split-input" if self.split_input else ""
        halves = (("encoder", self.centred_encoder), ("decoder", self.centred_decoder))
        centred = "+".join(name for name, on in halves if on)
        fused += f" centred={centred}" if centred else ""
        graph = ", cuda-graph" if self.use_graph else ""
        return (
            f"{self.device} {self.precision} {layout} pad={self.pad_mode}{fused}{extra}"
            f"{graph}, {res}{threads}"
        )

    def _code_stats(self, code: StyleCode) -> tuple[Tensor, Tensor]:
        """The code's (mean, std) as float32 on the device, cached by the code object."""
        key = id(code)
        hit = self._codes.get(key)
        if hit is not None and hit[0] is code:
            self._codes.move_to_end(key)
            return hit[1], hit[2]
        if code.channels != 512:
            raise InputError(f"style code has {code.channels} channels, the encoder gives 512")
        mean = code.mean.detach().to(self.device, torch.float32)
        std = code.std.detach().to(self.device, torch.float32)
        self._codes[key] = (code, mean, std)
        while len(self._codes) > _CODE_CACHE_SIZE:
            self._codes.popitem(last=False)
        return mean, std

    # --- tensor-level API ----------------------------------------------------------------------

    def _pinned_buffer(self, shape: tuple[int, ...], slot: int = 0) -> Tensor:
        key = (*shape, slot)
        buf = self._pinned.get(key)
        if buf is None:
            if len(self._pinned) > 16:
                self._pinned.clear()
            buf = torch.empty(shape, dtype=torch.uint8, pin_memory=True)
            self._pinned[key] = buf
        return buf

    def upload_uint8(self, frames: Sequence[np.ndarray | Tensor]) -> Tensor:
        """uint8 (H, W, 3) frames of one size → uint8 (B, H, W, 3) on the device.

        On CUDA the bytes go through a pinned host buffer (asynchronous copy); only uint8
        crosses the bus.
        """
        ts = [_as_hwc_uint8(f) for f in frames]
        if not ts:
            raise InputError("no frames given")
        shape = tuple(ts[0].shape)
        if any(tuple(t.shape) != shape for t in ts):
            raise InputError(
                "all frames of a batch must have the same size, got "
                + ", ".join(str(tuple(t.shape)) for t in ts)
            )
        if self.device.type != "cuda":
            return torch.stack([t.to(self.device) for t in ts])
        if all(t.device == self.device for t in ts):  # already on the device
            return torch.stack(ts)
        pinned = self._pinned_buffer((len(ts), *shape), slot=0)
        torch.cuda.current_stream(self.device).synchronize()  # previous copy out of `pinned` done
        for i, t in enumerate(ts):
            pinned[i].copy_(t)
        return pinned.to(self.device, non_blocking=True)

    def upload(self, frame: np.ndarray | Tensor) -> Tensor:
        """uint8 (H, W, 3) RGB → float32 (1, 3, H, W) in [-1, 1] on the device."""
        return Fn.uint8_to_unit(self.upload_uint8([frame]).permute(0, 3, 1, 2))

    def download(self, t: Tensor) -> np.ndarray:
        """float (1, 3, H, W) or (3, H, W) in ~[-1, 1] → uint8 (H, W, 3) RGB (clamped, rounded)."""
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[0] != 1 or t.shape[1] != 3:
            raise InputError(f"download expects (1, 3, H, W), got {tuple(t.shape)}")
        return self.download_batch(t)[0]

    def download_batch(self, t: Tensor) -> list[np.ndarray]:
        """float (B, 3, H, W) → B uint8 (H, W, 3) arrays; only uint8 crosses the bus."""
        return self.download_u8(Fn.unit_to_uint8(t.float(), rounding="round"))

    @torch.inference_mode()
    def stylize_tensor(
        self, x: Tensor, code: StyleCode, alpha: float = 1.0, preserve_color: bool = False
    ) -> Tensor:
        """float (B, 3, H, W) in [-1, 1] on the device → float32 (B, 3, H, W), unclamped.

        Applies the processing resolution (downscale, reflect-pad to a multiple of 8, run,
        crop, upscale back to exactly (H, W)).
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(f"stylize_tensor expects (B, 3, H, W), got {tuple(x.shape)}")
        check_alpha(alpha)
        h, w = int(x.shape[-2]), int(x.shape[-1])
        ph, pw = processing_size(h, w, self.config.resolution)
        x = x.to(self.device)
        try:
            return self._run(x, code, alpha, preserve_color, (ph, pw))
        except torch.OutOfMemoryError:
            raise self._oom_error(h, w, ph, pw) from None

    def _oom_error(self, h: int, w: int, ph: int, pw: int) -> EngineOutOfMemoryError:
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        lower = max(_OOM_FLOOR, (min(ph, pw) * 2 // 3) // 8 * 8)
        suggested = lower if lower < min(ph, pw) else 0
        hint = f", e.g. --resolution {lower}" if suggested else ""
        return EngineOutOfMemoryError(
            f"{self.device} ran out of memory stylizing at {pw}x{ph} (input {w}x{h}, "
            f"{self.precision}); lower the processing resolution{hint}",
            (ph, pw),
            suggested,
        )

    def _run(
        self,
        x: Tensor,
        code: StyleCode,
        alpha: float,
        preserve_color: bool,
        size: tuple[int, int],
    ) -> Tensor:
        s_mean, s_std = self._code_stats(code)
        return self._stylize(x, s_mean, s_std, alpha, preserve_color, size)

    def _stylize(
        self,
        x: Tensor,
        s_mean: Tensor,
        s_std: Tensor,
        alpha: float | Tensor,
        preserve_color: bool,
        size: tuple[int, int],
    ) -> Tensor:
        """float (B, 3, H, W) in [-1, 1] → float32 (B, 3, H, W); no host sync (capturable).

        ``alpha`` may be a 0-d device tensor (the CUDA graph path), which is always blended.
        """
        h, w = x.shape[-2:]
        ph, pw = size
        if self.compile == "reduce-overhead":  # CUDA graphs: a new frame starts here
            torch.compiler.cudagraph_mark_step_begin()
        work = (
            F.interpolate(x, size=(ph, pw), mode="bilinear", antialias=True, align_corners=False)
            if (ph, pw) != (h, w)
            else x
        )
        padded, pads = Fn.pad_to_multiple(work, 8)  # (B, 3, H8, W8)
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        if not self.split_input:  # SplitInputConv takes the float32 image as it is
            in_dtype = torch.float32 if self.centred_encoder else self.enc_dtype  # CentredNet
            padded = padded.to(dtype=in_dtype).contiguous(memory_format=fmt)
        feat = self._encoder(padded)  # (B, 512, H8/8, W8/8)
        f32 = feat.float()
        c_mean, c_std = Fn.channel_mean_std(f32)  # (B, 512, 1, 1) each
        if self.content_stats_hook is not None:
            c_mean, c_std = self.content_stats_hook(c_mean, c_std)
        t = Fn.adain_from_stats(f32, c_mean, c_std, s_mean, s_std)
        if isinstance(alpha, Tensor):
            t = alpha * t + (1.0 - alpha) * f32
        else:
            t = Fn.blend_strength(t, f32, alpha)
        dec_in = t if self.centred_decoder else t.to(self.dtype)  # CentredNet takes float32
        out = self._decoder(dec_in.contiguous(memory_format=fmt))
        out = Fn.crop_padding(out, pads).float()
        if (ph, pw) != (h, w):
            out = F.interpolate(out, size=(h, w), mode="bilinear", align_corners=False)
        if preserve_color:
            out = Fn.preserve_color(out, x)
        return out

    def _stylize_u8(
        self,
        u8: Tensor,
        s_mean: Tensor,
        s_std: Tensor,
        alpha: float | Tensor,
        preserve_color: bool,
    ) -> Tensor:
        """uint8 (B, H, W, 3) on the device → stylized uint8 (B, H, W, 3) on the device."""
        size = processing_size(int(u8.shape[1]), int(u8.shape[2]), self.config.resolution)
        x = Fn.uint8_to_unit(u8.permute(0, 3, 1, 2))  # (B, 3, H, W)
        out = self._stylize(x, s_mean, s_std, alpha, preserve_color, size)
        return Fn.unit_to_uint8(out, rounding="round")

    @torch.inference_mode()
    def stylize_u8(
        self, u8: Tensor, code: StyleCode, alpha: float = 1.0, preserve_color: bool = False
    ) -> Tensor:
        """uint8 (B, H, W, 3) RGB on the device → stylized uint8 (B, H, W, 3) on the device.

        With ``cuda_graph`` on, the whole frame runs as one captured CUDA graph per size (the
        first frame of a size captures it); the result is then the graph's own output buffer,
        valid until the next call: copy it if you keep it.
        """
        if u8.dtype != torch.uint8 or u8.dim() != 4 or u8.shape[3] != 3:
            raise InputError(
                f"stylize_u8 expects uint8 (B, H, W, 3), got {u8.dtype} {tuple(u8.shape)}"
            )
        check_alpha(alpha)
        h, w = int(u8.shape[1]), int(u8.shape[2])
        ph, pw = processing_size(h, w, self.config.resolution)
        s_mean, s_std = self._code_stats(code)
        try:
            graph = self._graph_for(tuple(u8.shape), preserve_color)
            if graph is not None:
                return graph.run(u8, s_mean, s_std, alpha)
            return self._stylize_u8(u8.to(self.device), s_mean, s_std, alpha, preserve_color)
        except torch.OutOfMemoryError:
            self._graphs.clear()
            raise self._oom_error(h, w, ph, pw) from None

    def _graph_for(self, shape: tuple[int, ...], preserve_color: bool) -> FrameGraph | None:
        """The captured graph for uint8 frames of ``shape`` (capturing it on first use), or
        None when graphs are off or a content-statistics hook needs the eager path."""
        if not self.use_graph or self.content_stats_hook is not None:
            return None
        key = (shape, preserve_color, self.config.resolution)
        g = self._graphs.get(key)
        if g is None:
            while len(self._graphs) >= _GRAPH_CACHE_SIZE:
                self._graphs.popitem(last=False)
            g = FrameGraph(self, shape, preserve_color)
            self._graphs[key] = g
        self._graphs.move_to_end(key)
        return g

    # --- frame-level API -----------------------------------------------------------------------

    def process_batch(
        self,
        frames: Sequence[np.ndarray | Tensor],
        code: StyleCode,
        alpha: float = 1.0,
        preserve_color: bool = False,
    ) -> list[np.ndarray]:
        """Stylize uint8 RGB frames of one size together; each result has its input's size.

        On CUDA with ``streams`` on, frames are pipelined one by one so the upload of the next
        frame and the download of the previous one overlap the compute of the current one.
        """
        if len(frames) == 0:
            return []
        if self.device.type == "cuda" and self.config.streams and len(frames) > 1:
            return self._process_pipelined(frames, code, alpha, preserve_color)
        u8 = self.upload_uint8(frames)  # (B, H, W, 3)
        return self.download_u8(self.stylize_u8(u8, code, alpha, preserve_color))

    def download_u8(self, u8: Tensor) -> list[np.ndarray]:
        """uint8 (B, H, W, 3) on the device → B host arrays (pinned copy on CUDA)."""
        if u8.device.type != "cuda":
            return list(u8.cpu().numpy())
        host = self._pinned_buffer(tuple(u8.shape), slot=-1)
        host.copy_(u8, non_blocking=True)
        torch.cuda.current_stream(u8.device).synchronize()
        return [a.copy() for a in host.numpy()]

    def process(
        self,
        frame: np.ndarray | Tensor,
        code: StyleCode,
        alpha: float = 1.0,
        preserve_color: bool = False,
    ) -> np.ndarray:
        """Stylize one uint8 RGB (H, W, 3) frame."""
        return self.process_batch([frame], code, alpha, preserve_color)[0]

    def warmup(self, height: int, width: int, code: StyleCode | None = None) -> None:
        """Run one dummy frame of (height, width) so compilation and autotuning happen now."""
        code = code or StyleCode(
            mean=torch.zeros(1, 512, 1, 1), std=torch.ones(1, 512, 1, 1), name="warmup"
        )
        self.process(np.zeros((height, width, 3), np.uint8), code)

    @torch.inference_mode()
    def _process_pipelined(
        self,
        frames: Sequence[np.ndarray | Tensor],
        code: StyleCode,
        alpha: float,
        preserve_color: bool,
    ) -> list[np.ndarray]:
        """CUDA: upload (stream U) → compute (current stream) → download (stream D), 2 slots."""
        ts = [_as_hwc_uint8(f) for f in frames]
        shape = tuple(ts[0].shape)
        if any(tuple(t.shape) != shape for t in ts):
            raise InputError("all frames of a batch must have the same size")
        check_alpha(alpha)
        h, w = shape[0], shape[1]
        ph, pw = processing_size(h, w, self.config.resolution)
        s_mean, s_std = self._code_stats(code)
        graph = self._graph_for((1, *shape), preserve_color)
        compute = torch.cuda.current_stream(self.device)
        up, down = torch.cuda.Stream(self.device), torch.cuda.Stream(self.device)
        slots = 2
        host_in = [self._pinned_buffer(shape, slot=1 + s) for s in range(slots)]
        host_out = [self._pinned_buffer(shape, slot=1 + slots + s) for s in range(slots)]
        dev_in = [torch.empty(shape, dtype=torch.uint8, device=self.device) for _ in range(slots)]
        dev_out = [torch.empty(shape, dtype=torch.uint8, device=self.device) for _ in range(slots)]
        uploaded = [torch.cuda.Event() for _ in range(slots)]
        consumed = [torch.cuda.Event() for _ in range(slots)]
        computed = [torch.cuda.Event() for _ in range(slots)]
        downloaded = [torch.cuda.Event() for _ in range(slots)]
        for s in range(slots):
            consumed[s].record(compute)
            downloaded[s].record(down)
        results: list[np.ndarray | None] = [None] * len(ts)

        def collect(i: int) -> None:
            s = i % slots
            downloaded[s].synchronize()
            results[i] = host_out[s].numpy().copy()

        def start_upload(i: int) -> None:
            s = i % slots
            uploaded[s].synchronize()  # the previous H2D copy out of host_in[s] is done
            host_in[s].copy_(ts[i])
            with torch.cuda.stream(up):
                up.wait_event(consumed[s])  # compute no longer reads dev_in[s]
                dev_in[s].copy_(host_in[s], non_blocking=True)
                uploaded[s].record(up)

        try:
            start_upload(0)
            for i in range(len(ts)):
                s = i % slots
                if i + 1 < len(ts):
                    start_upload(i + 1)
                compute.wait_event(uploaded[s])
                x = dev_in[s].unsqueeze(0)  # (1, H, W, 3)
                if graph is not None:
                    graph.load(x, s_mean, s_std, alpha)
                    consumed[s].record(compute)  # dev_in[s] may take the next upload
                    out = graph.replay()
                else:
                    out = self._stylize_u8(x, s_mean, s_std, alpha, preserve_color)
                    consumed[s].record(compute)
                if i >= slots:
                    collect(i - slots)  # host_out[s] and dev_out[s] are free again
                compute.wait_event(downloaded[s])
                dev_out[s].copy_(out[0])
                computed[s].record(compute)
                with torch.cuda.stream(down):
                    down.wait_event(computed[s])
                    host_out[s].copy_(dev_out[s], non_blocking=True)
                    downloaded[s].record(down)
            for i in range(max(0, len(ts) - slots), len(ts)):
                collect(i)
        except torch.OutOfMemoryError:
            raise self._oom_error(h, w, ph, pw) from None
        return [r for r in results if r is not None]


class FrameGraph:
    """One frame size captured as a CUDA graph: uint8 (B, H, W, 3) in → uint8 out, on device.

    The input, style statistics and strength live in static device buffers that each
    :meth:`run` fills before replaying, so style and strength change without re-capture.
    Capture follows PyTorch's recipe: warm-up on a side stream (cuDNN autotuning, any
    compilation), then one capture in the graph's own memory pool.
    """

    def __init__(self, engine: StylizeEngine, shape: tuple[int, ...], preserve_color: bool) -> None:
        dev = engine.device
        self.input = torch.zeros(shape, dtype=torch.uint8, device=dev)  # (B, H, W, 3)
        self.mean = torch.zeros(1, 512, 1, 1, device=dev)
        self.std = torch.ones(1, 512, 1, 1, device=dev)
        self.alpha = torch.ones((), device=dev)

        def frame() -> Tensor:
            return engine._stylize_u8(self.input, self.mean, self.std, self.alpha, preserve_color)

        side = torch.cuda.Stream(dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(2):
                frame()
        torch.cuda.current_stream(dev).wait_stream(side)
        self.graph = torch.cuda.CUDAGraph()
        # thread_local: other threads of the live pipeline may use CUDA during the capture
        with (
            torch.inference_mode(),
            torch.cuda.graph(self.graph, capture_error_mode="thread_local"),
        ):
            self.output = frame()

    def load(self, u8: Tensor, mean: Tensor, std: Tensor, alpha: float) -> None:
        """Copy a frame, style statistics and strength into the static inputs (current stream)."""
        self.input.copy_(u8, non_blocking=True)
        self.mean.copy_(mean.reshape(self.mean.shape))
        self.std.copy_(std.reshape(self.std.shape))
        self.alpha.fill_(alpha)

    def replay(self) -> Tensor:
        """Replay on the current stream; returns the static output buffer (B, H, W, 3)."""
        self.graph.replay()
        return self.output

    def run(self, u8: Tensor, mean: Tensor, std: Tensor, alpha: float) -> Tensor:
        """:meth:`load` then :meth:`replay`."""
        self.load(u8, mean, std, alpha)
        return self.replay()
