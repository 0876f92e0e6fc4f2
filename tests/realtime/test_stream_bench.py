"""The stream-clients benchmark runs end to end with short phases and reports a table."""

from __future__ import annotations

import numpy as np
import pytest

from realtime import stream_bench


def test_moving_frames_move_and_are_read_only() -> None:
    frames = stream_bench.moving_frames(64, 36, count=4)
    assert len(frames) == 4 and frames[0].shape == (36, 64, 3) and frames[0].dtype == np.uint8
    assert not frames[0].flags.writeable
    assert np.abs(frames[0].astype(int) - frames[1]).sum() > 0


@pytest.mark.slow
def test_benchmark_runs_with_short_phases(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--clients", "3", "--seconds", "1", "--repeats", "1", "--warmup", "0"]
    argv += ["--size", "64x36", "--processor", "passthrough", "--fps", "30"]
    assert stream_bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "| 1 | 0 |" in out and "| 2 | 3 |" in out and "mean fps without clients" in out
