"""Where the engine's device time goes: CUDA kernel time per frame, by kernel, for a few configs.

Run from the repository root on a CUDA machine (``bench/gpu_check.sh --profile`` does)::

    python bench/gpu_profile.py --sizes 1920x1080 --variant precision=fp16,compile=default

Each variant is warmed up, then ``--frames`` frames of device-resident uint8 input are
profiled (CUDA graphs are turned off so the profiler sees every kernel). Prints, per variant
and size, the device ms per frame of the kernel groups (convolutions, Triton, other) and the
top kernels; ``--json`` writes the same numbers.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.errors import InputError
from models.fileio import write_json
from models.generator import untrained_generator
from models.style_code import StyleCode
from realtime.commands.bench import parse_sizes, parse_variant
from realtime.engine import StylizeEngine

CONV_MARKS = ("conv", "xmma", "implicit", "cutlass", "gemm", "cudnn", "sm90", "wgrad", "dgrad")


def group(name: str) -> str:
    """Kernel group: conv (cuDNN/CUTLASS), triton (Inductor), or other (ATen)."""
    low = name.lower()
    if low.startswith("triton"):
        return "triton"
    if any(m in low for m in CONV_MARKS):
        return "conv"
    return "other"


@dataclasses.dataclass
class Profile:
    """Device time per frame of one engine configuration at one size."""

    variant: str
    size: str
    total_ms: float
    groups_ms: dict[str, float]
    kernels_per_frame: dict[str, float]
    top: list[tuple[str, float, float]]  # (kernel, ms per frame, launches per frame)


def profile_variant(
    engine: StylizeEngine, code: StyleCode, w: int, h: int, frames: int, spec: str
) -> Profile:
    """Device ms per frame by kernel group and the top kernels, for one engine and size."""
    u8 = torch.randint(0, 256, (1, h, w, 3), dtype=torch.uint8, device=engine.device)
    for _ in range(2):
        engine.stylize_u8(u8, code)
    cuda = engine.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    sync()
    with profile(activities=[ProfilerActivity.CUDA if cuda else ProfilerActivity.CPU]) as prof:
        for _ in range(frames):
            engine.stylize_u8(u8, code)
        sync()
    per_kernel: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for evt in prof.key_averages():
        if cuda:
            t = float(getattr(evt, "self_device_time_total", 0.0) or 0.0)
        else:  # rehearsal: CPU operator time instead
            t = float(evt.self_cpu_time_total)
        if t <= 0:
            continue
        per_kernel[evt.key][0] += t / 1e3 / frames  # ms per frame
        per_kernel[evt.key][1] += evt.count / frames
    groups: dict[str, float] = defaultdict(float)
    counts: dict[str, float] = defaultdict(float)
    for name, (ms, n) in per_kernel.items():
        groups[group(name)] += ms
        counts[group(name)] += n
    top = sorted(per_kernel.items(), key=lambda kv: -kv[1][0])[:12]
    return Profile(
        variant=spec,
        size=f"{w}x{h}",
        total_ms=sum(groups.values()),
        groups_ms=dict(groups),
        kernels_per_frame=dict(counts),
        top=[(name[:90], ms, n) for name, (ms, n) in top],
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1920x1080")
    p.add_argument("--variant", action="append", required=True, metavar="SPEC")
    p.add_argument("--frames", type=int, default=5)
    p.add_argument("--json")
    p.add_argument("--device", default="cuda", help="cuda (cpu: a rehearsal of the script)")
    args = p.parse_args()
    if args.device != "cpu" and not torch.cuda.is_available():
        print("gpu_profile: needs a CUDA device", file=sys.stderr)
        return 1
    dev = torch.device(args.device)
    ns = argparse.Namespace(resolution=0, threads=0)
    try:
        sizes = parse_sizes(args.sizes)
        configs = [
            dataclasses.replace(parse_variant(v, dev, ns), cuda_graph="off") for v in args.variant
        ]
    except InputError as e:
        print(f"gpu_profile: {e}", file=sys.stderr)
        return 1
    gen = untrained_generator(seed=0, with_photo_decoder=False).to(dev)
    code = gen.style_code(torch.rand(1, 3, 256, 256, device=dev) * 2 - 1).to("cpu")
    out: list[Profile] = []
    for spec, cfg in zip(args.variant, configs):
        try:
            engine = StylizeEngine(gen, cfg)
        except InputError as e:
            print(f"{spec}: FAILED {e}")
            continue
        for w, h in sizes:
            try:
                r = profile_variant(engine, code, w, h, args.frames, spec)
            except Exception as e:  # report and go on with the next
                print(f"{spec} {w}x{h}: FAILED {type(e).__name__}: {str(e)[:200]}")
                continue
            out.append(r)
            print(
                f"== {spec} {w}x{h}: {r.total_ms:.2f} ms/frame device; "
                + ", ".join(f"{k} {v:.2f} ms" for k, v in sorted(r.groups_ms.items()))
                + " | kernels/frame "
                + ", ".join(f"{k} {v:.0f}" for k, v in sorted(r.kernels_per_frame.items()))
            )
            for name, ms, n in r.top:
                print(f"   {ms:7.3f} ms  x{n:4.1f}  {name}")
    if args.json:
        write_json(Path(args.json), [dataclasses.asdict(r) for r in out], indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
