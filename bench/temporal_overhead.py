"""Per-frame cost each temporal strategy adds to the engine, at 640×360 and 1280×720 on this CPU.

The engine is replaced by a stand-in that returns a precomputed "stylized" frame (so only the
strategy's own work is timed, on real video motion); ``--engine-ms`` makes the stand-in sleep
like an engine busy elsewhere (a GPU, or another core), which is where ``flow_parallel`` pays.
Run from the repository root: ``python bench/temporal_overhead.py --frames 60``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.style_code import StyleCode
from realtime.commands.eval import read_frames
from realtime.temporal import STRATEGIES, TemporalConfig, make_strategy


class StandIn:
    """Engine stand-in: a fixed colour transform of the frame, computed before timing."""

    def __init__(self, frames: list[np.ndarray], sleep_s: float) -> None:
        self.device = torch.device("cpu")
        self.content_stats_hook = None
        self.sleep_s = sleep_s
        self._out = {
            f.data.tobytes()[:4096]: cv2.applyColorMap(f[..., 0], cv2.COLORMAP_JET) for f in frames
        }

    def process(
        self, frame: np.ndarray, code: StyleCode, alpha: float = 1.0, preserve_color: bool = False
    ) -> np.ndarray:
        if self.content_stats_hook is not None:  # what the engine would do with the hook
            self.content_stats_hook(torch.zeros(1, 512, 1, 1), torch.ones(1, 512, 1, 1))
        if self.sleep_s:
            time.sleep(self.sleep_s)
        return self._out[frame.data.tobytes()[:4096]]


def measure(
    name: str, frames: list[np.ndarray], cfg: TemporalConfig, sleep_s: float
) -> tuple[float, float]:
    """Median (wall, CPU) ms per frame the strategy adds to the engine (first frame excluded).

    CPU time (all threads of this process) is what the work costs on a core of its own; on a
    shared, loaded machine the wall time also counts waiting for a core.
    """
    engine = StandIn(frames, sleep_s)
    code = StyleCode(torch.zeros(1, 512, 1, 1), torch.ones(1, 512, 1, 1))
    s = make_strategy(name, cfg)
    wall, cpu = [], []
    for f in frames:
        t0, c0 = time.perf_counter(), time.process_time()
        s.step(f, engine, code, 1.0)  # type: ignore[arg-type]
        wall.append(time.perf_counter() - t0 - sleep_s)
        cpu.append(time.process_time() - c0)
    return 1000 * float(np.median(wall[1:])), 1000 * float(np.median(cpu[1:]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--video", default="../shared/data/video/plane_pan_audio.mp4")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument(
        "--engine-ms", type=float, default=40.0, help="stand-in engine time for the parallel rows"
    )
    p.add_argument("--json")
    args = p.parse_args()
    cv2.setNumThreads(1)
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    for w, h in ((640, 360), (1280, 720)):
        frames = read_frames(Path(args.video), args.frames, size=(w, h))
        key = f"{w}x{h}"
        for name in STRATEGIES:
            rows.setdefault(name, {})[key] = measure(name, frames, TemporalConfig(), 0.0)
        sleep = args.engine_ms / 1000
        rows.setdefault("flow (parallel, engine busy)", {})[key] = measure(
            "flow", frames, TemporalConfig(flow_parallel=True), sleep
        )
        rows.setdefault("flow+stats (parallel, engine busy)", {})[key] = measure(
            "flow+stats", frames, TemporalConfig(flow_parallel=True), sleep
        )
    print(
        "| strategy | 640×360 CPU ms | 640×360 wall ms | 1280×720 CPU ms | 1280×720 wall ms |\n"
        "|---|---:|---:|---:|---:|"
    )
    for name, r in rows.items():
        (w1, c1), (w2, c2) = r["640x360"], r["1280x720"]
        print(f"| {name} | {c1:.2f} | {w1:.2f} | {c2:.2f} | {w2:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
