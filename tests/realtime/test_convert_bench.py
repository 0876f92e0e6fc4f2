"""The conversion benchmark runs end to end on a tiny clip and reports a sane row."""

from __future__ import annotations

import argparse
from pathlib import Path

from realtime.convert_bench import HEADER, bench_one, cut_clip
from tests.realtime.videoclips import frame_times, make_clip, packets_bytes


def test_cut_clip_keeps_first_frames_and_their_audio(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "src.mp4", frames=10, audio="aac")
    images = cut_clip(src, 4, tmp_path / "cut.mp4")
    assert len(images) == 4
    assert frame_times(tmp_path / "cut.mp4") == frame_times(src)[:4]
    cut_audio = packets_bytes(tmp_path / "cut.mp4")[0]
    assert 0 < len(cut_audio) < len(packets_bytes(src)[0])
    assert cut_audio == packets_bytes(src)[0][: len(cut_audio)]


def test_bench_one_row(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "src.mp4", frames=4, size=(48, 32))
    args = argparse.Namespace(preset="ultrafast", precision="fp32", device="cpu")
    row = bench_one(src, 3, 16, 2, 1, args)
    assert row.frames == 3 and row.size == "48x32"
    assert row.engine_fps > 0 and row.convert_fps > 0
    assert abs(row.ratio - row.convert_fps / row.engine_fps) < 1e-9
    assert row.markdown().count("|") == HEADER.splitlines()[0].count("|")
