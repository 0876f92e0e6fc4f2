"""bench/triton_tune.py rehearsed on the CPU (Triton's interpreter), at the smallest frame."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton", reason="the triton package is not installed")

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "triton_tune.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", *args],
        capture_output=True,
        text=True,
        timeout=240,
    )


@pytest.mark.slow
def test_times_every_triton_layer_with_the_default_and_a_candidate(tmp_path):
    out = tmp_path / "tune.json"
    r = run("--size", "16x16", "--reps", "1", "--max-configs", "1", "--precision", "fp32",
            "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["rows"]
    # 8 encoder layers + 9 decoder layers + 3 phase layers, same shapes counted once
    runs = {net: sum(row["runs"].get(net, 0) for row in rows) for net in
            ("encoder", "decoder", "decoder-phases")}  # fmt: skip
    assert runs == {"encoder": 8, "decoder": 9, "decoder-phases": 9}
    assert sum(row["layer"].startswith("TritonUpConv") for row in rows) == 3
    for row in rows:
        assert row["default_ms"] > 0 and len(row["candidates_ms"]) == 2
        assert row["best_ms"] == min(t for t in row["candidates_ms"].values() if t is not None)
    assert "Triton layers per frame" in r.stdout


def test_bad_size_is_one_line():
    r = run("--size", "big")
    assert r.returncode == 1 and r.stderr.strip().count("\n") == 0
    assert "triton_tune: --size" in r.stderr
