"""Live pipeline statistics: per-stage milliseconds, end-to-end latency, fps and drops.

``PipelineStats`` is written by the pipeline's stage threads and read by the HUD, the
``--stats`` printer, the ``--stats-json`` writer and the HTTP control server (``snapshot()``
returns plain data). Everything is computed over a sliding window of recent samples, so the
numbers follow what is happening now, not the average since start.

(Quality metrics such as warping error and flicker live in ``realtime/metrics.py``.)
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

DEFAULT_WINDOW = 240  # samples kept per series (~8 s at 30 fps)


def percentile(values: list[float] | deque[float], q: float) -> float:
    """The ``q``-th percentile (0..100) of ``values``; 0.0 when empty."""
    if not values:
        return 0.0
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


class PipelineStats:
    """Thread-safe sliding-window counters for one pipeline run."""

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self._lock = threading.Lock()
        self._window = window
        self._stage_ms: dict[str, deque[float]] = {}
        self._stage_total_ms: dict[str, float] = {}  # since the start (offline summaries)
        self._latency_ms: deque[float] = deque(maxlen=window)
        self._out_times: deque[float] = deque(maxlen=window)
        self._counters: dict[str, int] = {}
        self._start = time.perf_counter()
        self._info: dict[str, Any] = {}

    def record_stage(self, stage: str, ms: float) -> None:
        """One timing of ``stage`` in milliseconds."""
        with self._lock:
            series = self._stage_ms.get(stage)
            if series is None:
                series = self._stage_ms[stage] = deque(maxlen=self._window)
            series.append(ms)
            self._stage_total_ms[stage] = self._stage_total_ms.get(stage, 0.0) + ms

    def stage_totals_s(self) -> dict[str, float]:
        """Seconds spent in each stage since the start (not windowed; for run summaries)."""
        with self._lock:
            return {k: v / 1000.0 for k, v in self._stage_total_ms.items()}

    def record_output(self, capture_time: float, now: float | None = None) -> None:
        """A frame reached the sinks; latency is measured from its capture timestamp."""
        t = time.perf_counter() if now is None else now
        with self._lock:
            self._latency_ms.append((t - capture_time) * 1000.0)
            self._out_times.append(t)
            self._counters["frames_out"] = self._counters.get("frames_out", 0) + 1

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to the counter ``name`` (frames_in, dropped_capture, dropped_output, ...)."""
        with self._lock:
            self._counters[name] = self._counters.get(name, 0) + n

    def set_counter(self, name: str, value: int) -> None:
        with self._lock:
            self._counters[name] = value

    def set_info(self, **info: Any) -> None:
        """Descriptive values shown with the numbers (style name, source, resolution ...)."""
        with self._lock:
            self._info.update(info)

    def fps(self) -> float:
        """Output frames per second over the window."""
        with self._lock:
            times = list(self._out_times)
        if len(times) < 2 or times[-1] <= times[0]:
            return 0.0
        return (len(times) - 1) / (times[-1] - times[0])

    def snapshot(self) -> dict[str, Any]:
        """Plain-data view: fps, latency p50/p95 (ms), mean ms per stage, counters, info."""
        with self._lock:
            stages = {k: float(np.mean(v)) for k, v in self._stage_ms.items() if v}
            lat = list(self._latency_ms)
            counters = dict(self._counters)
            info = dict(self._info)
            elapsed = time.perf_counter() - self._start
        dropped = sum(v for k, v in counters.items() if k.startswith("dropped"))
        return {
            "time": round(elapsed, 3),
            "fps": round(self.fps(), 2),
            "latency_ms_p50": round(percentile(lat, 50), 2),
            "latency_ms_p95": round(percentile(lat, 95), 2),
            "stage_ms": {k: round(v, 2) for k, v in stages.items()},
            "frames_in": counters.get("frames_in", 0),
            "frames_out": counters.get("frames_out", 0),
            "dropped": dropped,
            "counters": counters,
            **info,
        }


def format_line(snap: dict[str, Any]) -> str:
    """One human-readable line of a snapshot (for ``--stats``)."""
    stages = " ".join(f"{k} {v:.1f}" for k, v in snap.get("stage_ms", {}).items())
    return (
        f"fps {snap['fps']:.1f} | latency p50 {snap['latency_ms_p50']:.1f} ms "
        f"p95 {snap['latency_ms_p95']:.1f} ms | ms: {stages} | "
        f"in {snap['frames_in']} out {snap['frames_out']} dropped {snap['dropped']}"
    )


class StatsReporter:
    """Background thread: every ``interval`` s prints a line and/or appends a JSON line."""

    def __init__(
        self,
        snapshot_fn: Callable[[], dict[str, Any]],
        interval: float = 2.0,
        print_to: TextIO | None = None,
        json_path: Path | None = None,
    ) -> None:
        self.snapshot_fn = snapshot_fn
        self.interval = interval
        self.print_to = print_to
        self.json_path = json_path
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._json: TextIO | None = None

    def start(self) -> None:
        if self.print_to is None and self.json_path is None:
            return
        if self.json_path is not None:
            self.json_path.parent.mkdir(parents=True, exist_ok=True)
            self._json = self.json_path.open("a", encoding="utf-8")
        self._thread = threading.Thread(target=self._loop, name="castrt-stats", daemon=True)
        self._thread.start()

    def emit(self) -> None:
        """Write one report now."""
        snap = self.snapshot_fn()
        if self.print_to is not None:
            print(format_line(snap), file=self.print_to, flush=True)
        if self._json is not None:
            self._json.write(json.dumps(snap) + "\n")
            self._json.flush()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.emit()

    def stop(self) -> None:
        """Stop the thread, write a final report, close the JSON file."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.emit()
        if self._json is not None:
            self._json.close()
            self._json = None
        self._thread = None


def stderr_or_none(enabled: bool) -> TextIO | None:
    return sys.stderr if enabled else None
