"""``castrt bench --pipeline``: the whole live pipeline against the engine alone, same frames.

For each ``--sizes`` entry (640x360 is the reference case) the same pre-rendered test-pattern
frames are stylized, alternating in rounds so that machine load hits both alike:

* **engine alone**: ``engine.process`` in a plain loop (no queues) on one worker thread, like
  the pipeline's process stage (also timed on the calling thread, reported beside it);
* **pipeline, lossless**: frames source → ``StylizeStage`` → null sink, unpaced, nothing
  dropped: end-to-end throughput;
* **pipeline, live (camera-like)**: the same frames released at the measured engine rate, as a
  camera at that rate would, latest-frame-wins: latency p50/p95 from capture to sink, fps and
  drops.

Then the pipeline's own overhead: the same frames through a stage that just waits 10 ms or
4 ms (a GPU call that releases the GIL), in a plain loop vs in the pipeline.

Goals (issue 4): end-to-end fps ≥ 0.9 × engine-alone fps, and live latency p95 ≤ 2 frame
intervals at that rate. ``run(args)`` reads the ``castrt bench`` namespace: model flags,
``sizes``, ``precision`` (first entry), ``resolution``, ``repeats``, ``frames``, ``seconds``,
``json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import platform
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.errors import InputError
from models.fileio import write_json
from realtime.commands.common import build_generator, configure_threads, resolve_device
from realtime.engine import EngineConfig, StylizeEngine
from realtime.pipeline import Frame, Pipeline, Processor, StylizeStage
from realtime.settings import LiveSettings, SettingsStore
from realtime.sinks import NullSink
from realtime.sources import FrameListSource, TestPatternSource
from realtime.styles import StyleBank, StyleEntry


@dataclass(frozen=True)
class PipelineBenchRow:
    """One size's results (fps are frames per second of wall time)."""

    size: str
    frames: int
    engine_fps: float  # engine alone, on a worker thread
    engine_main_thread_fps: float  # engine alone, on the calling thread
    pipeline_fps: float
    ratio: float  # pipeline / engine
    live_fps: float
    live_latency_p50_ms: float
    live_latency_p95_ms: float
    live_p95_intervals: float  # p95 latency in frame intervals at the engine rate
    live_dropped: int
    stage_ms: dict[str, float]


def _parse_size(text: str) -> tuple[int, int]:
    w, sep, h = text.strip().lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise InputError(f"--sizes: expected WxH items, got {text!r}")
    return int(w), int(h)


def _engine_config(args: argparse.Namespace, device: torch.device) -> EngineConfig:
    precision = str(getattr(args, "precision", "fp32") or "fp32").split(",")[0].strip()
    kwargs: dict[str, Any] = {
        "device": str(device),
        "precision": precision,
        "resolution": int(getattr(args, "resolution", 0) or 0),
    }
    names = {f.name for f in dataclasses.fields(EngineConfig)}
    compile_mode = str(getattr(args, "compile", "auto") or "auto").split(",")[0].strip()
    if "compile" in names:
        kwargs["compile"] = compile_mode
    return EngineConfig(**kwargs)


def _frames_for(args: argparse.Namespace, engine_s_per_frame: float) -> int:
    n = int(getattr(args, "frames", 0) or 0)
    if n > 0:
        return n
    seconds = float(getattr(args, "seconds", 10.0) or 10.0)
    return max(4, min(600, round(seconds / max(engine_s_per_frame, 1e-4))))


def bench_size(
    engine: StylizeEngine, style: StyleEntry, width: int, height: int, args: argparse.Namespace
) -> PipelineBenchRow:
    """Engine alone vs the pipeline on the same frames of one size."""
    pattern = TestPatternSource(width, height, realtime=False)
    pattern.open()
    code = style.code
    # warm-up (allocator, caches) and a first estimate of the per-frame cost
    warm = pattern.render(0)
    engine.process(warm, code)
    t0 = time.perf_counter()
    engine.process(warm, code)
    estimate = time.perf_counter() - t0
    rounds = max(1, int(getattr(args, "repeats", 3) or 3))
    per_round = max(2, _frames_for(args, estimate) // rounds)
    frames = [pattern.render(i) for i in range(per_round)]

    engine_time = pipe_time = main_time = 0.0
    engine_frames = pipe_frames = 0
    stage_ms: dict[str, float] = {}

    def engine_loop() -> None:
        for f in frames:
            engine.process(f, code)

    for _ in range(rounds):
        # engine alone on a worker thread, like the pipeline's process stage (on a loaded CPU
        # the interpreter's main thread was measured slower at the same torch work)
        t0 = time.perf_counter()
        worker = threading.Thread(target=engine_loop, name="castrt-bench-engine")
        worker.start()
        worker.join()
        engine_time += time.perf_counter() - t0
        engine_frames += len(frames)
        t0 = time.perf_counter()
        engine_loop()
        main_time += time.perf_counter() - t0

        stage = StylizeStage(engine, [style])
        store = SettingsStore(LiveSettings())
        sink = NullSink()
        report = Pipeline(
            FrameListSource(frames), stage, [sink], policy="lossless", settings=store
        ).run()
        if report.frames_written != len(frames):
            raise RuntimeError("lossless pipeline lost frames")  # an invariant, not user input
        pipe_time += report.elapsed_s
        pipe_frames += report.frames_written
        stage_ms = dict(report.stats.get("stage_ms", {}))

    engine_fps = engine_frames / engine_time
    main_fps = engine_frames / main_time
    pipeline_fps = pipe_frames / pipe_time

    return _with_live_run(
        f"{width}x{height}",
        frames * rounds,
        StylizeStage(engine, [style]),
        engine_frames=engine_frames,
        engine_fps=engine_fps,
        main_fps=main_fps,
        pipeline_fps=pipeline_fps,
        stage_ms=stage_ms,
    )


def bench_overhead(
    width: int, height: int, stage_ms: float = 10.0, frames: int = 200
) -> PipelineBenchRow:
    """The pipeline's own cost: a stage that waits ``stage_ms`` (like a GPU call that releases
    the GIL) in a plain loop vs in the pipeline, on frames of ``width``×``height``."""
    pattern = TestPatternSource(width, height, realtime=False)
    pattern.open()
    images = [pattern.render(i) for i in range(8)]
    images = [images[i % len(images)] for i in range(frames)]
    delay = stage_ms / 1000.0

    def wait_stage(frame: Frame, settings: LiveSettings) -> Frame:
        time.sleep(delay)
        return frame.with_image(frame.image)

    t0 = time.perf_counter()
    for img in images:
        wait_stage(Frame(0, img), LiveSettings())
    alone_fps = frames / (time.perf_counter() - t0)
    lossless = Pipeline(FrameListSource(images), wait_stage, [NullSink()], policy="lossless").run()
    return _with_live_run(
        f"{width}x{height}, {stage_ms:g} ms stage",
        images,
        wait_stage,
        engine_frames=frames,
        engine_fps=alone_fps,
        main_fps=alone_fps,
        pipeline_fps=lossless.fps,
        stage_ms=dict(lossless.stats.get("stage_ms", {})),
    )


def _with_live_run(
    size: str,
    images: list[np.ndarray],
    processor: Processor,
    *,
    engine_frames: int,
    engine_fps: float,
    main_fps: float,
    pipeline_fps: float,
    stage_ms: dict[str, float],
) -> PipelineBenchRow:
    """Run ``images`` camera-like (released at ``engine_fps``, latest frame wins) through
    ``processor`` and return the row with that live run's fps, latency and drops."""
    live = Pipeline(
        FrameListSource(images, fps=engine_fps, realtime=True),
        processor,
        [NullSink()],
        policy="live",
    ).run()
    p50 = float(live.stats.get("latency_ms_p50", 0.0))
    p95 = float(live.stats.get("latency_ms_p95", 0.0))
    return PipelineBenchRow(
        size=size,
        frames=engine_frames,
        engine_fps=engine_fps,
        engine_main_thread_fps=main_fps,
        pipeline_fps=pipeline_fps,
        ratio=pipeline_fps / engine_fps,
        live_fps=live.fps,
        live_latency_p50_ms=p50,
        live_latency_p95_ms=p95,
        live_p95_intervals=p95 / 1000.0 * engine_fps,
        live_dropped=live.dropped,
        stage_ms=stage_ms,
    )


def format_rows(rows: list[PipelineBenchRow]) -> str:
    """A Markdown table of the results."""
    lines = [
        "| size | frames | engine alone fps (worker thread / main thread) | "
        "pipeline fps (lossless) | ratio pipeline / engine | live fps | "
        "live latency p50 / p95 ms | p95 in frame intervals | live drops |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.size} | {r.frames} | {r.engine_fps:.3g} / {r.engine_main_thread_fps:.3g} | "
            f"{r.pipeline_fps:.3g} | {r.ratio:.3f} | "
            f"{r.live_fps:.3g} | {r.live_latency_p50_ms:.0f} / {r.live_latency_p95_ms:.0f} | "
            f"{r.live_p95_intervals:.2f} | {r.live_dropped} |"
        )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Entry point used by ``castrt bench --pipeline``."""
    configure_threads(int(getattr(args, "threads", 0) or 0))
    device = resolve_device(str(getattr(args, "device", "auto") or "auto"))
    sizes_text = str(getattr(args, "sizes", "") or "640x360")
    sizes = [_parse_size(s) for s in sizes_text.split(",") if s.strip()]
    gen = build_generator(args, device)
    style_img = TestPatternSource(256, 256, realtime=False).render(7)[::-1].copy()
    bank = StyleBank(gen)
    style = StyleEntry("pattern", None, bank.encode_rgb(style_img, name="pattern"))
    engine = StylizeEngine(gen, _engine_config(args, device))
    rows = []
    for w, h in sizes:
        row = bench_size(engine, style, w, h, args)
        rows.append(row)
        print(
            f"{row.size}: engine {row.engine_fps:.3g} fps, pipeline {row.pipeline_fps:.3g} fps "
            f"(ratio {row.ratio:.3f}), live p95 {row.live_latency_p95_ms:.0f} ms "
            f"= {row.live_p95_intervals:.2f} intervals",
            flush=True,
        )
    for w, h in sizes:
        for ms in (10.0, 4.0):  # ~100 fps and ~250 fps stages: the pipeline's own overhead
            budget = min(2.0, float(getattr(args, "seconds", 10.0) or 10.0))
            row = bench_overhead(w, h, ms, frames=max(20, int(budget / (ms / 1000.0))))
            rows.append(row)
            print(
                f"{row.size}: ratio {row.ratio:.3f}, live p95 {row.live_p95_intervals:.2f} intervals"
            )
    machine = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
    }
    print(
        f"castrt bench --pipeline — {machine['gpu'] or machine['cpu']}, {machine['cores']} cores, "
        f"torch {machine['torch']}, engine {engine.config}"
    )
    print(format_rows(rows))
    if getattr(args, "json", None):
        payload = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine,
            "rows": [asdict(r) for r in rows],
        }
        write_json(Path(args.json), payload)
    return 0
