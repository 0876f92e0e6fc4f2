"""Pipeline statistics, the stats reporter and the HUD text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from realtime.hud import draw_hud, hud_lines
from realtime.settings import LiveSettings
from realtime.stats import PipelineStats, StatsReporter, format_line


def test_snapshot_fps_latency_and_drops() -> None:
    s = PipelineStats()
    for i in range(11):
        s.record_stage("process", 10.0 + i)
        s.record_output(capture_time=i * 0.1 - 0.05, now=i * 0.1)  # 50 ms latency, 10 fps
    s.count("frames_in", 20)
    s.set_counter("dropped_capture", 9)
    snap = s.snapshot()
    assert snap["fps"] == 10.0
    assert snap["latency_ms_p50"] == 50.0 and snap["latency_ms_p95"] == 50.0
    assert snap["stage_ms"]["process"] == 15.0
    assert snap["frames_out"] == 11 and snap["dropped"] == 9
    assert "fps 10.0" in format_line(snap)


def test_reporter_writes_json_lines(tmp_path: Path) -> None:
    s = PipelineStats()
    s.set_info(style="candy")
    path = tmp_path / "stats.jsonl"
    r = StatsReporter(s.snapshot, interval=0.05, json_path=path)
    r.start()
    import time

    time.sleep(0.2)
    r.stop()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert len(lines) >= 2 and lines[-1]["style"] == "candy"


def test_hud_lines_and_drawing() -> None:
    lines = hud_lines(
        {
            "fps": 29.9,
            "latency_ms_p50": 30,
            "latency_ms_p95": 45,
            "stage_ms": {"process": 20.0},
            "dropped": 2,
        },
        LiveSettings(alpha=0.5),
        "candy",
    )
    assert "29.9 fps" in lines[0] and "dropped 2" in lines[0] and "candy" in lines[2]
    img = np.full((100, 300, 3), 200, np.uint8)
    out = draw_hud(img, lines)
    assert out.shape == img.shape and not np.array_equal(out, img)
    assert np.array_equal(img, np.full((100, 300, 3), 200, np.uint8))  # input untouched
    assert np.array_equal(draw_hud(img, []), img)
