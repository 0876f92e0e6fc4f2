"""bench/numerics_sweep.py on one photo and one style of ../shared (skips without it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from realtime.engine import cpu_bf16_supported
from tests.conftest import shared_path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "numerics_sweep.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=240
    )


@pytest.mark.skipif(not cpu_bf16_supported(), reason="this CPU has no native bf16")
def test_sweeps_whole_photo_and_flattest_window_against_fp32(tmp_path):
    shared_path("data", "content")  # skips with the reason when ../shared is absent
    out = tmp_path / "sweep.json"
    r = run("--variant", "precision=fp32", "--variant", "precision=bf16", "--limit", "1",
            "--json", str(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "| **all** | flattest |" in r.stdout
    result = json.loads(out.read_text())
    assert [row["kind"] for row in result["rows"]] == ["whole", "flattest"]
    flat = result["rows"][1]
    assert flat["size"] == [200, 304]
    fp32, bf16 = (flat["share"][v] for v in result["meta"]["variants"])
    assert min(fp32.values()) == 1.0  # fp32 engine: within 1 level everywhere, so within 3
    assert 0.99 <= min(bf16.values()) <= 1.0


def test_bad_variant_is_one_line_and_exit_2():
    r = run("--variant", "precision=int8", "--limit", "1")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "precision must be one of" in r.stderr
