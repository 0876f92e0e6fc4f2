"""``castrt bench``: time the stylize engine against a naive script, resolution × variant.

Every variant is warmed up once (the first call's time is reported as warm-up), then the
variants of one resolution are timed in interleaved rounds so that load changes on a shared
machine hit them alike. ``--pipeline`` hands over to ``realtime.pipeline_bench`` (the
whole live pipeline: source → engine → sink).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from models import fileio
from models.errors import InputError
from models.fileio import first_line
from models.generator import CASTGenerator
from models.style_code import StyleCode
from realtime.commands.common import add_model_args, build_generator, configure_threads
from realtime.commands.common import resolve_device as resolve_device_arg
from realtime.engine import (
    COMPILE_MODES,
    FUSE_MODES,
    GRAPH_MODES,
    PAD_MODES,
    PRECISIONS,
    EngineConfig,
    StylizeEngine,
    count_conv_flops,
    resolve_precision,
)

DEFAULT_SIZES = "256x256,640x360"


@dataclass(frozen=True)
class BenchRow:
    """One resolution × variant measurement (times per frame)."""

    size: str
    variant: str
    median_ms: float
    min_ms: float
    fps: float
    tflops: float
    peak_mib: float
    warmup_s: float
    speedup: float  # median of the naive baseline / this median (0: no baseline)
    cpu_ms: float = 0.0  # median process CPU time per frame, all threads (robust to load)
    gpu_ms: float = 0.0  # CUDA engines: median device time of the frame on device-resident
    # uint8 input (CUDA events; no host copies), per frame


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """``"640x360,1920x1080"`` → [(640, 360), (1920, 1080)] as (width, height)."""
    sizes = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        try:
            w, h = (int(v) for v in part.split("x"))
        except ValueError:
            raise InputError(f"--sizes: expected WxH[,WxH...], got {part!r}") from None
        if w < 8 or h < 8 or w > 16384 or h > 16384:
            raise InputError(f"--sizes: {part} is out of range (8..16384 per side)")
        sizes.append((w, h))
    if not sizes:
        raise InputError("--sizes: no size given")
    return sizes


def parse_choices(text: str, allowed: tuple[str, ...], flag: str) -> list[str]:
    """Comma-separated choices, each in ``allowed``, duplicates dropped."""
    out: list[str] = []
    for v in (p.strip() for p in text.split(",")):
        if not v:
            continue
        if v not in allowed:
            raise InputError(f"{flag}: {v!r} is not one of {', '.join(allowed)}")
        if v not in out:
            out.append(v)
    if not out:
        raise InputError(f"{flag}: nothing given")
    return out


def machine_info(device: torch.device) -> dict[str, str]:
    """CPU / GPU names and library versions for the results file."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def reset_peak(device: torch.device) -> None:
    """Start a new peak-memory window (CUDA allocator; Linux resident-set high-water mark)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # elsewhere the peak is the process's so far
        Path("/proc/self/clear_refs").write_text("5")


def peak_mib(device: torch.device) -> float:
    """Peak device memory since :func:`reset_peak` (CUDA) or peak RSS of the process (CPU)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 1024 if sys.platform != "darwin" else rss / 2**20


NAIVE_LAYOUTS = {
    "nchw": "naive fp32 (host float)",
    "nhwc": "naive fp32 (host float, NHWC strides)",
}


def naive_runner(
    gen: CASTGenerator, code: StyleCode, device: torch.device, layout: str = "nchw"
) -> Callable[[list[np.ndarray]], object]:
    """What a user script does: float32 host tensors up, eager fp32 model, float32 back.

    ``nchw``: a contiguous (B, 3, H, W) tensor, as torchvision's ``ToTensor`` (the reference
    test path) makes; ``nhwc``: ``permute`` then ``float()``, which keeps the frame's
    channels-last strides, so PyTorch runs the whole network channels_last.
    """

    def run(frames: list[np.ndarray]) -> object:
        with torch.inference_mode():
            x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
            if layout == "nchw":
                x = x.contiguous()
            out = gen.stylize(x.to(device), code, exact_size=True).cpu()
            return ((out.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()

    return run


def engine_runner(engine: StylizeEngine, code: StyleCode) -> Callable[[list[np.ndarray]], object]:
    """The engine's batch call: uint8 frames in, uint8 frames out."""

    def run(frames: list[np.ndarray]) -> object:
        return engine.process_batch(frames, code)

    return run


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def parse_variant(spec: str, device: torch.device, args: argparse.Namespace) -> EngineConfig:
    """``"precision=fp16,pad_mode=border,fuse_relu=on,cuda_graph=on"`` → an EngineConfig.

    Unnamed fields take the command's ``--resolution`` and ``--threads`` and the defaults.
    """
    fields = {f.name: f for f in dataclasses.fields(EngineConfig)}
    kw: dict[str, object] = {
        "device": str(device),
        "resolution": args.resolution,
        "threads": args.threads,
    }
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in fields or key == "device":
            names = ", ".join(n for n in fields if n != "device")
            raise InputError(f"--variant: expected KEY=VALUE with KEY one of {names}, got {part!r}")
        value = value.strip()
        if key in ("resolution", "threads"):
            try:
                kw[key] = int(value)
            except ValueError:
                raise InputError(f"--variant: {key} must be an integer, got {value!r}") from None
        elif key in ("streams", "channels_last"):
            if value not in ("true", "false", "on", "off", "1", "0"):
                raise InputError(f"--variant: {key} must be on or off, got {value!r}")
            kw[key] = value in ("true", "on", "1")
        else:
            kw[key] = value
    cfg = EngineConfig(**kw)  # type: ignore[arg-type]  # values checked by __post_init__
    return dataclasses.replace(cfg, precision=resolve_precision(cfg.precision, device))


def engine_variants(
    args: argparse.Namespace, device: torch.device
) -> list[tuple[str, EngineConfig]]:
    """(name, config) for each ``--variant``, else every precision × compile × pad-mode ×
    fuse × graph combination asked for."""
    out: list[tuple[str, EngineConfig]] = []
    seen: set[EngineConfig] = set()
    configs: list[EngineConfig] = []
    if args.variant:
        configs = [parse_variant(v, device, args) for v in args.variant]
    else:
        for prec in parse_choices(args.precision, PRECISIONS, "--precision"):
            resolved = resolve_precision(prec, device)
            for comp in parse_choices(args.compile, COMPILE_MODES, "--compile"):
                for pad in parse_choices(args.pad_mode, PAD_MODES, "--pad-mode"):
                    for fuse in parse_choices(args.fuse_relu, FUSE_MODES, "--fuse-relu"):
                        for graph in parse_choices(args.cuda_graph, GRAPH_MODES, "--cuda-graph"):
                            configs.append(
                                EngineConfig(
                                    device=str(device),
                                    precision=resolved,
                                    resolution=args.resolution,
                                    pad_mode=pad,
                                    fuse_relu=fuse,
                                    compile=comp,
                                    threads=args.threads,
                                    cuda_graph=graph,
                                )
                            )
    for cfg in configs:
        if cfg in seen:
            continue
        seen.add(cfg)
        out.append((cfg_name(cfg), cfg))
    return out


def cfg_name(cfg: EngineConfig) -> str:
    """``engine <precision>`` plus every field that differs from EngineConfig's default."""
    parts = [f"engine {cfg.precision}"]
    default = EngineConfig()
    for f in dataclasses.fields(EngineConfig):
        if f.name in ("device", "precision", "threads"):
            continue
        value = getattr(cfg, f.name)
        if value == getattr(default, f.name):
            continue
        key = "pad" if f.name == "pad_mode" else f.name.replace("_", "-")
        if f.name == "resolution":
            parts.append(f"{value}p")
        elif isinstance(value, bool):
            parts.append(f"{key}={'on' if value else 'off'}")
        else:
            parts.append(f"{key}={value}")
    return " ".join(parts)


def device_ms(engine: StylizeEngine, frames: list[np.ndarray], code: StyleCode, n: int) -> float:
    """Median CUDA-event time (ms per frame) of the engine's frame on device-resident uint8."""
    u8 = engine.upload_uint8(frames)
    engine.stylize_u8(u8, code)  # any first-call work (capture, compile) stays out
    times = []
    for _ in range(n):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        engine.stylize_u8(u8, code)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / len(frames))
    return statistics.median(times)


def bench(args: argparse.Namespace) -> tuple[list[BenchRow], dict[str, str], float, list[str]]:
    """Run the benchmark; returns rows, machine info, FLOPs per pixel and failures.

    A variant that fails (an unsupported configuration on this device, say) is reported as
    one line in the failures and left out; the others go on.
    """
    device = resolve_device_arg(args.device)
    configure_threads(args.threads)
    if args.repeats < 1 or args.batch < 1:
        raise InputError("--repeats and --batch must be >= 1")
    sizes = parse_sizes(args.sizes)
    gen = build_generator(args, device)
    flops_px = count_conv_flops(gen)
    style = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1
    code = gen.style_code(style.to(device)).to("cpu")
    info = machine_info(device)
    rows: list[BenchRow] = []
    failures: list[str] = []
    engines: dict[str, StylizeEngine] = {}  # built once, timed at every size
    for name, cfg in engine_variants(args, device):
        try:
            engines[name] = StylizeEngine(gen, cfg)
        except (InputError, RuntimeError) as err:
            failures.append(f"{name}: {first_line(err)[:300]}")
            print(f"  {name}: FAILED to build: {first_line(err)}", file=sys.stderr)
    rng = np.random.default_rng(0)
    for w, h in sizes:
        frames = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(args.batch)]
        runners: dict[str, Callable[[list[np.ndarray]], object]] = {}
        engine_of: dict[str, StylizeEngine] = {}
        if not args.no_naive:
            for layout in parse_choices(args.naive, tuple(NAIVE_LAYOUTS), "--naive"):
                runners[NAIVE_LAYOUTS[layout]] = naive_runner(gen, code, device, layout)
        for name, e in engines.items():
            label = f"{name} [{e.precision} {'cl' if e.channels_last else 'nchw'}]"
            runners[label] = engine_runner(e, code)
            engine_of[label] = e
        warm: dict[str, float] = {}
        peaks: dict[str, float] = {}
        for name, run in list(runners.items()):
            reset_peak(device)
            t0 = time.perf_counter()
            try:
                run(frames)
                _sync(device)
            except torch.OutOfMemoryError:
                raise InputError(f"out of memory at {w}x{h} ({name}); drop that size") from None
            except Exception as err:  # one variant's failure must not end the run
                failures.append(f"{w}x{h} {name}: {type(err).__name__}: {first_line(err)[:300]}")
                print(f"  {w}x{h} {name}: FAILED: {first_line(err)}", file=sys.stderr)
                del runners[name]
                continue
            warm[name] = time.perf_counter() - t0
            peaks[name] = peak_mib(device)
            print(f"  {w}x{h} {name}: warm-up {warm[name]:.2f} s", file=sys.stderr)
        times: dict[str, list[float]] = {k: [] for k in runners}
        cpu: dict[str, list[float]] = {k: [] for k in runners}
        for _ in range(args.repeats):
            for name, run in runners.items():
                _sync(device)
                t0, c0 = time.perf_counter(), time.process_time()
                run(frames)
                _sync(device)
                times[name].append((time.perf_counter() - t0) * 1e3 / args.batch)
                cpu[name].append((time.process_time() - c0) * 1e3 / args.batch)
        gpu: dict[str, float] = {}
        if device.type == "cuda":
            for name, eng in engine_of.items():
                if name not in runners:
                    continue
                try:
                    gpu[name] = device_ms(eng, frames, code, args.repeats)
                except Exception as err:  # the frame-level row stands without it
                    failures.append(f"{w}x{h} {name} (device time): {first_line(err)[:300]}")
        first = next(iter(times), None)
        base = statistics.median(times[first]) if first and not args.no_naive else 0.0
        for name, ts in times.items():
            med = statistics.median(ts)
            rows.append(
                BenchRow(
                    size=f"{w}x{h}",
                    variant=name,
                    median_ms=med,
                    min_ms=min(ts),
                    fps=1e3 / med,
                    tflops=flops_px * w * h / (med * 1e-3) / 1e12,
                    peak_mib=peaks[name],
                    warmup_s=warm[name],
                    speedup=base / med if base else 0.0,
                    cpu_ms=statistics.median(cpu[name]),
                    gpu_ms=gpu.get(name, 0.0),
                )
            )
        if args.json:  # partial results survive a later size's failure or a timeout
            write_json(args, rows, info, flops_px, failures)
    return rows, info, flops_px, failures


def format_table(rows: list[BenchRow]) -> str:
    """A Markdown table of the rows (a GPU ms column when any row has one)."""
    has_gpu = any(r.gpu_ms for r in rows)
    head = (
        "| size | variant | median ms | min ms | fps | TFLOP/s | peak MiB | warm-up s | "
        "× naive | CPU ms |" + (" GPU ms |" if has_gpu else "")
    )
    lines = [
        head,
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|" if has_gpu else ""),
    ]
    for r in rows:
        gpu = (f" {r.gpu_ms:.2f} |" if r.gpu_ms else " – |") if has_gpu else ""
        lines.append(
            f"| {r.size} | {r.variant} | {r.median_ms:.1f} | {r.min_ms:.1f} | {r.fps:.1f} | "
            f"{r.tflops:.3f} | {r.peak_mib:.0f} | {r.warmup_s:.2f} | "
            + (f"{r.speedup:.2f}× |" if r.speedup else "– |")
            + f" {r.cpu_ms:.0f} |"
            + gpu
        )
    return "\n".join(lines)


def write_json(
    args: argparse.Namespace,
    rows: list[BenchRow],
    info: dict[str, str],
    flops_px: float,
    failures: list[str],
) -> None:
    """Write the results to ``--json`` atomically (temporary file, then rename)."""
    payload = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": info,
        "flops_per_pixel": flops_px,
        "batch": args.batch,
        "repeats": args.repeats,
        "rows": [asdict(r) for r in rows],
        "failures": failures,
    }
    fileio.write_json(Path(args.json), payload)


def run_pipeline(args: argparse.Namespace) -> int:
    """``--pipeline``: the whole-pipeline benchmark (imported here to keep start-up light)."""
    from realtime import pipeline_bench

    return int(pipeline_bench.run(args) or 0)


def run(args: argparse.Namespace) -> int:
    if args.pipeline:
        return run_pipeline(args)
    rows, info, flops_px, failures = bench(args)
    print(
        f"castrt bench — {info.get('gpu', info['cpu'])}, torch {info['torch']}, "
        f"{info['threads']} CPU threads, batch {args.batch}, {args.repeats} repeats, "
        f"{flops_px / 1e6:.3f} MFLOP/pixel"
    )
    print(format_table(rows))
    for f in failures:
        print(f"FAILED {f}")
    if args.json:
        write_json(args, rows, info, flops_px, failures)
    return 1 if failures else 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="time the stylize engine against a naive script (resolution × variant)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_model_args(p)
    p.add_argument(
        "--sizes",
        default=DEFAULT_SIZES,
        help=f"comma-separated WxH frame sizes (default {DEFAULT_SIZES})",
    )
    p.add_argument(
        "--precision",
        default="fp32,auto",
        help="comma-separated engine precisions: auto, fp32, bf16, fp16, mixed (default fp32,auto)",
    )
    p.add_argument(
        "--compile",
        default="auto",
        help="comma-separated torch.compile modes: auto (default on CUDA, off on CPU), off, "
        "default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs",
    )
    p.add_argument(
        "--pad-mode",
        default="auto",
        help="comma-separated reflection-padding code: auto, module, cat, border (same numbers)",
    )
    p.add_argument(
        "--fuse-relu",
        default="auto",
        help="comma-separated CPU conv+ReLU fusion settings: auto, on, off",
    )
    p.add_argument(
        "--cuda-graph",
        default="auto",
        help="comma-separated CUDA-graph settings: auto, on, off (whole frame as one graph)",
    )
    p.add_argument(
        "--variant",
        action="append",
        metavar="SPEC",
        help="an engine configuration as EngineConfig fields, e.g. "
        "'precision=fp16,pad_mode=border,fuse_relu=on,cuda_graph=on' (repeatable; replaces "
        "the cross product of --precision/--compile/--pad-mode/--fuse-relu/--cuda-graph)",
    )
    p.add_argument(
        "--resolution", type=int, default=0, help="processing shorter side (default 0: native)"
    )
    p.add_argument("--batch", type=int, default=1, help="frames per call (default 1)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (default 5)")
    p.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    p.add_argument(
        "--naive",
        default="nchw",
        help="naive baselines, comma-separated: nchw (ToTensor-style contiguous input, the "
        "first is the speed-up reference), nhwc (permute+float, channels-last strides)",
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    p.add_argument(
        "--pipeline",
        action="store_true",
        help="benchmark the whole live pipeline instead (realtime.pipeline_bench)",
    )
    p.add_argument(
        "--seconds", type=float, default=10.0, help="--pipeline: how long to run (default 10)"
    )
    p.add_argument(
        "--frames", type=int, default=0, help="--pipeline: stop after N frames (0: use --seconds)"
    )
    p.set_defaults(func=run)
