"""``castrt eval temporal VIDEO``: warping error, flicker, fidelity and overhead of each strategy.

Every strategy sees the same frames and the same (optionally perturbed) style code per frame;
the per-frame output (strategy ``off``) is the fidelity reference. Engine results are shared
between strategies that call the engine with the same frame and code (a cache), so the time
a strategy adds is measured as its step time minus its time inside the engine.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from models.errors import InputError
from models.fileio import write_json
from models.style_code import StyleCode
from realtime.commands.common import (
    add_model_args,
    build_generator,
    configure_threads,
    resolve_device,
)
from realtime.config import load_config
from realtime.engine import EngineConfig, StatsHook, StylizeEngine
from realtime.metrics import PairFlow, TemporalScore, input_flows
from realtime.styles import StyleBank, default_cache_dir
from realtime.temporal import STRATEGIES, Keyframe, TemporalConfig, make_strategy


def parse_resolution(text: str) -> tuple[int, int] | None:
    """``"640x360"`` → (640, 360); ``"native"`` → None."""
    if text in ("native", "0"):
        return None
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise InputError(f"--resolution: expected WIDTHxHEIGHT or native, got {text!r}") from None
    if w < 16 or h < 16:
        raise InputError(f"--resolution: at least 16x16, got {text!r}")
    return w, h


def read_frames(
    path: Path, limit: int, start: int = 0, size: tuple[int, int] | None = None
) -> list[np.ndarray]:
    """Up to ``limit`` uint8 RGB frames from a video file (0: all), resized to ``size`` = (W, H)."""
    if not path.is_file():
        raise InputError(f"video not found: {path}")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise InputError(f"cannot open video {path} (not a video OpenCV can decode)")
        frames: list[np.ndarray] = []
        index = 0
        while limit <= 0 or len(frames) < limit:
            ok, bgr = cap.read()
            if not ok:
                break
            index += 1
            if index <= start:
                continue
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            if size is not None and (rgb.shape[1], rgb.shape[0]) != size:
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            frames.append(rgb)
    finally:
        cap.release()
    if len(frames) < 2:
        raise InputError(f"{path}: need at least 2 frames to evaluate, got {len(frames)}")
    return frames


def perturbed_codes(code: StyleCode, n: int, sigma: float, seed: int = 0) -> list[StyleCode]:
    """Controlled flicker: per frame, mean and std × (1 + σ·N(0, 1)) per channel (seeded)."""
    if sigma <= 0:
        return [code] * n
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        nm = torch.randn(code.mean.shape, generator=gen)
        ns = torch.randn(code.std.shape, generator=gen)
        mean = code.mean * (1.0 + sigma * nm)
        std = (code.std * (1.0 + sigma * ns)).clamp_min(1e-5)
        out.append(dataclasses.replace(code, mean=mean, std=std))
    return out


class MeteredEngine:
    """Wraps an engine: caches plain calls by (frame bytes, code) and times every call."""

    def __init__(
        self,
        engine: StylizeEngine,
        cache: dict[tuple[bytes, int, float], np.ndarray],
        use_cache: bool,
    ) -> None:
        self.engine = engine
        self.device = engine.device
        self.cache = cache
        self.use_cache = use_cache
        self.inside = 0.0  # wall seconds spent inside process()
        self.calls = 0

    @property
    def content_stats_hook(self) -> StatsHook | None:
        return self.engine.content_stats_hook

    @content_stats_hook.setter
    def content_stats_hook(self, hook: StatsHook | None) -> None:
        self.engine.content_stats_hook = hook

    def process(
        self, frame: np.ndarray, code: StyleCode, alpha: float = 1.0, preserve_color: bool = False
    ) -> np.ndarray:
        t0 = time.perf_counter()
        self.calls += 1
        plain = self.use_cache and self.engine.content_stats_hook is None and not preserve_color
        key = (
            (hashlib.blake2b(frame.data, digest_size=16).digest(), id(code), alpha)
            if plain
            else None
        )
        if key is not None and key in self.cache:
            out = self.cache[key]
        else:
            out = self.engine.process(frame, code, alpha, preserve_color)
            if key is not None:
                self.cache[key] = out
        self.inside += time.perf_counter() - t0
        return out


def evaluate_strategy(
    name: str,
    frames: Sequence[np.ndarray],
    codes: Sequence[StyleCode],
    flows: Sequence[PairFlow | None],
    references: Sequence[np.ndarray],
    engine: StylizeEngine,
    cache: dict[tuple[bytes, int, float], np.ndarray],
    config: TemporalConfig,
    alpha: float = 1.0,
    with_ssim: bool = True,
) -> dict[str, float | str]:
    """Run one strategy over the frames; its scores, overhead and (keyframe) stylization rate."""
    strategy = make_strategy(name, config)
    keyframe = isinstance(strategy, Keyframe)
    metered = MeteredEngine(engine, cache, use_cache=not keyframe)
    score = TemporalScore(with_ssim=with_ssim)
    overhead: list[float] = []
    wall = 0.0
    for t, frame in enumerate(frames):
        before = metered.inside
        t0 = time.perf_counter()
        out = strategy.step(frame, metered, codes[t], alpha)  # type: ignore[arg-type]
        dt = time.perf_counter() - t0
        wall += dt
        if t > 0:
            overhead.append(dt - (metered.inside - before))
        score.update(frame, out, flows[t], references[t])
    res: dict[str, float | str] = {"strategy": strategy.name, **score.result()}
    res["overhead_ms_median"] = 1000 * float(np.median(overhead))
    res["overhead_ms_mean"] = 1000 * float(np.mean(overhead))
    if keyframe:
        assert isinstance(strategy, Keyframe)
        res.update({k: float(v) for k, v in strategy.stats().items()})
        res["output_fps"] = len(frames) / wall if wall > 0 else 0.0
    return res


def run_temporal(args: argparse.Namespace) -> int:
    configure_threads(args.threads)
    device = resolve_device(args.device)
    size = parse_resolution(args.resolution)
    names = [n.strip() for n in args.strategy.split(",")] if args.strategy else list(STRATEGIES)
    for n in names:
        make_strategy(n)  # validate names before the slow part
    if "off" not in names:
        names.insert(0, "off")
    overrides = {
        k: v
        for k, v in (("interval", args.interval), ("target_fps", args.target_fps))
        if v is not None
    }
    cfg = load_config(TemporalConfig, args.temporal_config, overrides)
    frames = read_frames(Path(args.video), args.frames, args.start, size)
    style = Path(args.style)
    if not style.is_file():
        raise InputError(f"style image not found: {style}")
    gen = build_generator(args, device)
    engine = StylizeEngine(gen, EngineConfig(device=str(device), resolution=args.process_res))
    code = StyleBank(gen, cache_dir=default_cache_dir()).code_for_file(style)
    codes = perturbed_codes(code, len(frames), args.flicker, args.seed)
    h, w = frames[0].shape[:2]
    print(
        f"eval temporal: {len(frames)} frames {w}x{h}, flicker σ={args.flicker}, strategies {', '.join(names)}",
        file=sys.stderr,
    )
    flows = input_flows(frames)
    cache: dict[tuple[bytes, int, float], np.ndarray] = {}
    ref_engine = MeteredEngine(engine, cache, use_cache=True)
    references = [ref_engine.process(f, c, args.alpha) for f, c in zip(frames, codes, strict=True)]
    engine_ms = 1000 * ref_engine.inside / len(frames)
    results = []
    for n in names:
        r = evaluate_strategy(
            n, frames, codes, flows, references, engine, cache, cfg, args.alpha, not args.no_ssim
        )
        results.append(r)
    off = next(r for r in results if r["strategy"] == "off")
    for r in results:
        base = float(off["e_warp"])
        r["e_warp_ratio"] = float(r["e_warp"]) / base if base > 0 else 0.0
        print(
            f"  {r['strategy']:<15} E_warp {float(r['e_warp']):.5f} (×{float(r['e_warp_ratio']):.2f} off)  "
            f"flicker {float(r['flicker']):.2f}  PSNR {float(r.get('psnr', float('inf'))):.1f} dB  "
            f"SSIM {float(r.get('ssim', 1.0)):.3f}  overhead {float(r['overhead_ms_median']):.1f} ms",
            file=sys.stderr,
        )
    report = {
        "video": str(args.video),
        "frames": len(frames),
        "width": w,
        "height": h,
        "flicker_sigma": args.flicker,
        "process_res": args.process_res,
        "style": str(style),
        "untrained": bool(args.untrained),
        "device": str(device),
        "engine_ms_per_frame": engine_ms,
        "config": dataclasses.asdict(cfg),
        "results": results,
    }
    if args.json:
        write_json(Path(args.json), report, default=float)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="measure quality figures (temporal consistency)")
    sub = p.add_subparsers(dest="eval_kind", metavar="KIND", required=True)
    t = sub.add_parser(
        "temporal", help="E_warp, flicker, fidelity and overhead of temporal strategies on a video"
    )
    t.add_argument("video", help="video file")
    t.add_argument("--style", required=True, help="style image")
    t.add_argument(
        "--strategy", help=f"comma-separated strategies (default: all of {', '.join(STRATEGIES)})"
    )
    t.add_argument(
        "--resolution", default="native", help="resize frames to WIDTHxHEIGHT (default: native)"
    )
    t.add_argument(
        "--process-res", type=int, default=0, help="engine processing shorter side (0: frame size)"
    )
    t.add_argument(
        "--frames", type=int, default=0, help="evaluate at most this many frames (0: all)"
    )
    t.add_argument("--start", type=int, default=0, help="skip this many frames first")
    t.add_argument(
        "--flicker",
        type=float,
        default=0.0,
        metavar="SIZE",
        help="controlled flicker σ: per-frame style stats × (1 + σ·N(0,1)) (default 0)",
    )
    t.add_argument("--alpha", type=float, default=1.0, help="stylization strength (default 1)")
    t.add_argument(
        "--temporal-config",
        metavar="YAML",
        help="TemporalConfig preset (e.g. configs/temporal.yaml)",
    )
    t.add_argument("--interval", type=int, help="keyframe interval (default 4)")
    t.add_argument(
        "--target-fps",
        type=float,
        help="keyframe: adapt the interval to hold this fps (default 0: fixed interval)",
    )
    t.add_argument("--no-ssim", action="store_true", help="skip SSIM (faster)")
    t.add_argument("--json", metavar="FILE", help="write the report here")
    add_model_args(t)
    t.set_defaults(func=run_temporal)
