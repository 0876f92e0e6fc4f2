"""realtime.triton_conv: the fused reflect-pad conv kernel against PyTorch, and in the engine.

Without a CUDA device the kernel runs in Triton's interpreter (TRITON_INTERPRET=1, set before
the module is imported), which checks the indexing and arithmetic, not the speed.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

if not torch.cuda.is_available():  # before triton is imported: it reads this at import
    os.environ.setdefault("TRITON_INTERPRET", "1")
pytest.importorskip("triton", reason="the triton package is not installed")

from models.errors import InputError
from models.generator import untrained_generator
from realtime.engine import EngineConfig, ReflectConv, StylizeEngine, generator_layers
from realtime.triton_conv import (
    TritonReflectConv,
    TritonUpConv,
    build_triton_net,
    conv_weight_matrix,
    phase_weight_matrices,
    reflect_conv3x3,
    up2_phase_conv,
)
from tests.realtime.test_engine import level_diff, reference, smooth_frame, within_three_levels

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# fp32 tl.dot runs in TF32 on a GPU (10-bit mantissa); the interpreter computes in fp32
REL_TOL = 2e-3 if DEVICE == "cuda" else 1e-5
LEVELS = 3 if DEVICE == "cuda" else 1


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float().cpu() - want.float().cpu()).norm() / want.float().norm())


def torch_layer(x, conv, relu, op):
    if op == "pool2":
        x = F.max_pool2d(x, 2, 2, ceil_mode=True)
    elif op == "up2":
        x = F.interpolate(x, scale_factor=2, mode="nearest")
    y = conv(F.pad(x, (1, 1, 1, 1), mode="reflect"))
    return F.relu(y) if relu else y


@pytest.mark.parametrize("op", ["none", "up2", "pool2"])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize(
    ("c", "k", "h", "w"), [(16, 24, 6, 10), (80, 3, 4, 4), (64, 130, 4, 6), (96, 17, 6, 4)]
)
def test_kernel_equals_pool_upsample_pad_conv_relu(op, relu, c, k, h, w):
    torch.manual_seed(c + k)
    x = torch.randn(2, c, h, w, device=DEVICE).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(c, k, 3).to(DEVICE)
    with torch.inference_mode():
        want = torch_layer(x, conv, relu, op)
        got = reflect_conv3x3(x, conv_weight_matrix(conv.weight), conv.bias, relu, op)
    assert got.shape == want.shape and got.is_contiguous(memory_format=torch.channels_last)
    assert rel_err(got, want) <= REL_TOL


@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize(("c", "k", "h", "w"), [(16, 24, 3, 5), (64, 130, 2, 3), (32, 3, 1, 4)])
def test_phase_kernel_equals_upsample_pad_conv_relu(relu, c, k, h, w):
    torch.manual_seed(c + k + h)
    x = torch.randn(2, c, h, w, device=DEVICE).contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(c, k, 3).to(DEVICE)
    with torch.inference_mode():
        want = torch_layer(x, conv, relu, "up2")
        got = up2_phase_conv(x, *phase_weight_matrices(conv.weight, conv.bias), relu)
    assert got.shape == want.shape and got.is_contiguous(memory_format=torch.channels_last)
    assert rel_err(got, want) <= REL_TOL
    with pytest.raises(ValueError, match="do not match"):
        up2_phase_conv(x, torch.zeros(4, 4 * c + 16, k, device=DEVICE), conv.bias, relu)


INTERPRETER_BF16 = pytest.mark.skipif(
    DEVICE == "cpu",
    reason="Triton's interpreter multiplies bf16 bit patterns in tl.dot "
    "(triton-lang/triton#11584); runs on a GPU",
)


@pytest.mark.parametrize(
    "dtype", [pytest.param(torch.bfloat16, marks=INTERPRETER_BF16), torch.float16]
)
@pytest.mark.parametrize("op", ["none", "up2", "pool2", "phases"])
def test_kernels_in_half_precision(dtype, op):
    """The engine's fp16 / bf16 path: same dtype in and out, close to fp32 on the same values
    (the max-pool once fed tl.dot mixed dtypes in the interpreter)."""
    torch.manual_seed(5)
    x = (
        torch.randn(2, 32, 4, 6, device=DEVICE)
        .to(dtype)
        .contiguous(memory_format=torch.channels_last)
    )
    conv = torch.nn.Conv2d(32, 48, 3).to(DEVICE).to(dtype)
    ref = torch.nn.Conv2d(32, 48, 3).to(DEVICE)
    ref.load_state_dict({k: v.float() for k, v in conv.state_dict().items()})
    with torch.inference_mode():
        want = torch_layer(x.float(), ref, True, "up2" if op == "phases" else op)
        if op == "phases":
            got = up2_phase_conv(x, *phase_weight_matrices(conv.weight, conv.bias), True)
        else:
            got = reflect_conv3x3(x, conv_weight_matrix(conv.weight), conv.bias, True, op)
    assert got.dtype == dtype and got.shape == want.shape
    assert rel_err(got, want) <= 1e-2


def test_kernel_refuses_what_it_cannot_compute():
    x = torch.zeros(1, 16, 5, 6).contiguous(memory_format=torch.channels_last)
    w, b = torch.zeros(144, 8), torch.zeros(8)
    with pytest.raises(ValueError, match="even"):
        reflect_conv3x3(x, w, b, True, "pool2")
    with pytest.raises(ValueError, match="input_op"):
        reflect_conv3x3(x, w, b, True, "bilinear")
    with pytest.raises(ValueError, match="does not match"):
        reflect_conv3x3(x, torch.zeros(9, 8), b, True)
    odd = torch.zeros(1, 20, 4, 4).contiguous(memory_format=torch.channels_last)
    with pytest.raises(ValueError, match="multiple of 16"):
        reflect_conv3x3(odd, torch.zeros(180, 8), b, True)


def test_network_rewrite_fuses_every_wide_layer_and_keeps_the_function():
    gen = untrained_generator(seed=1, with_photo_decoder=False)
    enc, dec = generator_layers(gen)
    tenc, tdec = build_triton_net(enc), build_triton_net(dec)
    fused = [m for m in [*tenc, *tdec] if isinstance(m, TritonReflectConv)]
    assert len(fused) == 8 + 9  # every 3×3 conv but the first RGB one
    first = tenc[0]  # the 1×1 input conv folded into it, slice padding, fused ReLU
    assert isinstance(first, ReflectConv) and first.conv.weight.shape == (64, 3, 3, 3)
    assert (first.pad_mode, first.relu, first.fused) == ("cat", True, True)
    assert not any(isinstance(m, torch.nn.Conv2d | torch.nn.ReflectionPad2d) for m in tenc)
    assert [m.input_op for m in fused].count("pool2") == 3
    assert [m.input_op for m in fused].count("up2") == 3
    pdec = build_triton_net(dec, up_phases=True)
    assert sum(isinstance(m, TritonUpConv) for m in pdec) == 3
    assert sum(isinstance(m, TritonReflectConv) for m in pdec) == 6
    x = torch.rand(1, 3, 16, 24) * 2 - 1
    with torch.inference_mode():
        f = enc(x)
        tf = tenc.to(DEVICE)(x.to(DEVICE).contiguous(memory_format=torch.channels_last))
        assert rel_err(tf, f) <= REL_TOL
        fd = f.to(DEVICE).contiguous(memory_format=torch.channels_last)
        assert rel_err(tdec.to(DEVICE)(fd), dec(f)) <= 2 * REL_TOL
        assert rel_err(pdec.to(DEVICE)(fd), dec(f)) <= 2 * REL_TOL


@pytest.mark.parametrize("up", ["plain", "phases"])
def test_engine_with_triton_convs_matches_the_generator(up):
    gen = untrained_generator(seed=3, with_photo_decoder=False)
    frame = smooth_frame(20, 28, seed=2)
    code = gen.style_code(torch.rand(1, 3, 32, 32) * 2 - 1)
    cfg = EngineConfig(DEVICE, precision="fp32", conv_impl="triton", upsample_conv=up)
    engine = StylizeEngine(gen, cfg)
    assert engine.compile == "off" and "conv=triton" in engine.describe()
    assert any(isinstance(m, TritonUpConv) for m in engine._dec_module) == (up == "phases")
    d = level_diff(engine.process(frame, code, 0.8), reference(gen.cpu(), frame, code, 0.8))
    assert (d <= LEVELS).mean() >= 0.999


def test_triton_engine_settings_are_checked(monkeypatch):
    with pytest.raises(InputError, match="compile=off"):
        EngineConfig(conv_impl="triton", compile="default")
    with pytest.raises(InputError, match="conv_impl"):
        EngineConfig(conv_impl="cutlass")
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    if DEVICE == "cpu":
        gen = untrained_generator(seed=0, with_photo_decoder=False)
        with pytest.raises(InputError, match="CUDA"):
            StylizeEngine(gen, EngineConfig(conv_impl="triton"))


@pytest.mark.cuda
@pytest.mark.skipif(DEVICE != "cuda", reason="needs a CUDA device (fp16 engine)")
@pytest.mark.parametrize("up", ["plain", "phases"])
def test_fp16_triton_engine_within_three_levels(up):
    gen = untrained_generator(seed=3, with_photo_decoder=False)
    with torch.no_grad():  # outputs in the image range, as test_engine's generator
        gen.dec_b.decoder[28].weight.mul_(0.25)
        gen.dec_b.decoder[28].bias.mul_(0.25)
    frame = smooth_frame(72, 120, seed=4)
    code = gen.style_code(torch.rand(1, 3, 32, 32) * 2 - 1)
    cfg = EngineConfig("cuda", precision="fp16", conv_impl="triton", upsample_conv=up)
    engine = StylizeEngine(gen, cfg)
    assert (
        within_three_levels(engine.process(frame, code), reference(gen.cpu(), frame, code)) >= 0.999
    )


@pytest.mark.slow
def test_every_network_layer_compiles_for_the_h100_with_tensor_cores_and_pipelining():
    """Without a GPU (bench/triton_aot.py, in its own process: compiling needs the real
    @triton.jit, which TRITON_INTERPRET replaces): each Triton layer of the engine's network,
    fp16 and bf16, compiled for sm_90 as the JIT would on an H100 uses wgmma, cp.async
    pipelining, and fits the shared memory."""
    import subprocess
    import sys
    from pathlib import Path

    from triton.backends import backends

    if "nvidia" not in backends:
        pytest.skip("this triton build has no NVIDIA backend to compile for")
    script = Path(__file__).resolve().parents[2] / "bench" / "triton_aot.py"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    r = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=240, env=env
    )
    assert r.returncode == 0, r.stdout + r.stderr
    rows = [
        line
        for line in r.stdout.splitlines()
        if line.startswith("| reflect") or line.startswith("| phases")
    ]
    assert len(rows) >= 16 and all(line.rstrip().endswith("| ok |") for line in rows)
