"""The pipeline benchmark runs end to end on tiny frames and reports sane numbers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from realtime import pipeline_bench


@pytest.mark.slow
def test_pipeline_bench_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "bench.json"
    args = argparse.Namespace(
        checkpoint=None, untrained=True, seed=0, epoch="latest", device="cpu", threads=0,
        sizes="48x32", precision="fp32", resolution=0, repeats=2, frames=6, seconds=0.1,
        json=str(out),
    )  # fmt: skip
    assert pipeline_bench.run(args) == 0
    text = capsys.readouterr().out
    assert "| 48x32 |" in text
    row, *overhead = json.loads(out.read_text())["rows"]
    assert [r["size"] for r in overhead] == ["48x32, 10 ms stage", "48x32, 4 ms stage"]
    assert all(r["frames"] >= 20 and r["pipeline_fps"] > 0 for r in overhead)
    assert row["frames"] == 6 and row["engine_fps"] > 0 and row["pipeline_fps"] > 0
    assert row["live_latency_p95_ms"] > 0 and "process" in row["stage_ms"]
