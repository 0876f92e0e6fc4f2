"""castrt convert: exact frames/timestamps/sizes/audio, resume, interruption, folders, errors."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from models.generator import CASTGenerator
from models.style_code import StyleCode
from realtime.cli import main
from realtime.commands.convert import (
    Converter,
    ConvertOptions,
    Interrupted,
    plan_jobs,
    state_path,
)
from realtime.video_io import OutputError, VideoReader, partial_path
from tests.conftest import shared_path
from tests.realtime.videoclips import frame_times, make_clip, packets_bytes

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def code() -> StyleCode:
    g = torch.Generator().manual_seed(0)
    return StyleCode(
        torch.rand(1, 512, 1, 1, generator=g), torch.rand(1, 512, 1, 1, generator=g) + 0.5
    )


def converter(gen: CASTGenerator, code: StyleCode, **kw: object) -> Converter:
    opts = ConvertOptions(progress=False, batch=2, preset="ultrafast", **kw)  # type: ignore[arg-type]
    return Converter(gen, code, opts)


def stop_after(conv: Converter, calls: int) -> None:
    """Make ``conv`` behave as if Ctrl-C came during its ``calls``-th engine call."""
    real = conv.engine.process_batch
    n = [0]

    def wrapped(*a: object, **k: object) -> list[np.ndarray]:
        n[0] += 1
        if n[0] == calls:
            conv.stop.set()
        return real(*a, **k)  # type: ignore[arg-type]

    conv.engine.process_batch = wrapped  # type: ignore[method-assign]


def decoded(path: Path) -> list[np.ndarray]:
    with VideoReader(path) as r:
        return [f.image for f in r.frames()]


@pytest.mark.parametrize(
    "clip",
    [
        dict(size=(64, 48), frames=8, audio="aac"),
        dict(size=(37, 23), frames=6),
        dict(
            size=(48, 32),
            pts=[i * 1001 for i in range(6)],
            time_base=Fraction(1, 30000),
            rate=Fraction(30000, 1001),
        ),
        dict(
            size=(48, 32),
            pts=[0, 1, 4, 5, 9, 20],
            time_base=Fraction(1, 30),
            audio="aac",
            last_duration=3,
        ),
    ],
    ids=["cfr-audio", "odd-size", "ntsc", "vfr-audio"],
)
def test_video_keeps_frames_timestamps_size_and_audio(
    clip: dict, tmp_path: Path, tiny_gen: CASTGenerator, code: StyleCode
) -> None:
    src = make_clip(tmp_path / "src.mp4", **clip)
    dst = tmp_path / "out.mp4"
    res = converter(tiny_gen, code).convert_video(src, dst)
    assert res.frames == len(frame_times(src))
    assert frame_times(dst) == frame_times(src)
    assert packets_bytes(dst) == packets_bytes(src)
    with VideoReader(src) as a, VideoReader(dst) as b:
        assert (b.info.width, b.info.height) == (a.info.width, a.info.height)
        assert b.info.rate == a.info.rate or clip.get("pts") is not None
        fa, fb = list(a.frames()), list(b.frames())
    end_a = (fa[-1].pts + fa[-1].duration) * fa[-1].time_base
    end_b = (fb[-1].pts + fb[-1].duration) * fb[-1].time_base
    assert end_a == end_b
    assert not partial_path(dst).exists() and not state_path(dst).exists()
    # it went through the shared lossless pipeline, which accounts for every frame
    assert res.report is not None and res.report.stopped_by == "end of input"
    assert res.report.frames_written == res.frames and res.report.dropped == 0
    assert "pipeline:" in res.summary()
    # the output really is stylized, not the input copied
    assert np.abs(fa[0].image.astype(int) - fb[0].image.astype(int)).mean() > 10


def test_interrupted_then_resumed_equals_uninterrupted(
    tmp_path: Path, tiny_gen: CASTGenerator, code: StyleCode
) -> None:
    src = make_clip(tmp_path / "src.mp4", frames=8, size=(48, 32), audio="aac")
    full = tmp_path / "full.mp4"
    converter(tiny_gen, code).convert_video(src, full)

    dst = tmp_path / "res.mp4"
    conv = converter(tiny_gen, code)
    stop_after(conv, 2)
    with pytest.raises(Interrupted, match="--resume"):
        conv.convert_video(src, dst)
    part = partial_path(dst)
    assert not dst.exists() and part.exists() and state_path(dst).exists()
    done = len(frame_times(part))
    assert 0 < done < 8  # a playable file with the finished frames
    assert frame_times(part) == frame_times(src)[:done]

    calls = []
    conv2 = converter(tiny_gen, code, resume=True)
    real = conv2.engine.process_batch
    conv2.engine.process_batch = lambda fr, *a, **k: calls.append(len(fr)) or real(fr, *a, **k)  # type: ignore[method-assign]
    res = conv2.convert_video(src, dst)
    assert res.resumed_frames == done and sum(calls) == 8 - done  # nothing redone
    assert res.report is not None and res.report.frames_written == 8 - done
    assert frame_times(dst) == frame_times(full) == frame_times(src)
    assert packets_bytes(dst) == packets_bytes(full) == packets_bytes(src)
    assert not part.exists() and not state_path(dst).exists()
    # The finished frames' packets are remuxed unchanged, new ones come from a fresh encoder:
    # pixels before the cut match the uninterrupted run except the last flushed frame.
    a, b = decoded(dst), decoded(full)
    assert len(a) == len(b) == 8
    for x, y in zip(a[: done - 1], b[: done - 1]):
        assert np.array_equal(x, y)


def test_stale_partial_needs_resume_or_overwrite(
    tmp_path: Path, tiny_gen: CASTGenerator, code: StyleCode
) -> None:
    src = make_clip(tmp_path / "src.mp4", frames=8)
    dst = tmp_path / "out.mp4"
    conv = converter(tiny_gen, code)
    stop_after(conv, 2)
    with pytest.raises(Interrupted):
        conv.convert_video(src, dst)
    before = partial_path(dst).read_bytes()
    with pytest.raises(OutputError, match="--resume"):
        converter(tiny_gen, code).convert_video(src, dst)
    assert partial_path(dst).read_bytes() == before
    with pytest.raises(OutputError, match="settings differ"):
        converter(tiny_gen, code, resume=True, alpha=0.5).convert_video(src, dst)
    assert partial_path(dst).read_bytes() == before
    converter(tiny_gen, code, overwrite=True).convert_video(src, dst)
    assert len(frame_times(dst)) == 8 and not partial_path(dst).exists()


def test_temporal_strategy_path(tmp_path: Path, tiny_gen: CASTGenerator, code: StyleCode) -> None:
    src = make_clip(tmp_path / "src.mp4", frames=5)
    dst = tmp_path / "out.mp4"
    converter(tiny_gen, code, temporal="ema").convert_video(src, dst)
    assert frame_times(dst) == frame_times(src)


def test_truncated_input_converts_what_decodes(
    tmp_path: Path, tiny_gen: CASTGenerator, code: StyleCode
) -> None:
    src = make_clip(tmp_path / "full.mkv", frames=16, codec="mpeg4")
    cut = tmp_path / "cut.mkv"
    data = src.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    dst = tmp_path / "out.mp4"
    res = converter(tiny_gen, code).convert_video(cut, dst)
    assert 0 < res.frames < 16 and len(frame_times(dst)) == res.frames
    assert frame_times(dst) == frame_times(src)[: res.frames]


def test_plan_jobs_for_folders(tmp_path: Path) -> None:
    d = tmp_path / "in"
    (d / "sub").mkdir(parents=True)
    for name in ("a.mp4", "a.avi", "sub/b.mkv", "pic.jpg", ".hidden.mp4", "x.partial.mp4"):
        (d / name).write_bytes(b"")
    jobs, skipped = plan_jobs([d], tmp_path / "out", "mp4")
    dsts = sorted(str(j.dst.relative_to(tmp_path / "out")) for j in jobs)
    assert dsts == ["a.mp4", "a_mp4.mp4", "pic.png", "sub/b.mp4"] or dsts == [
        "a.mp4",
        "a_avi.mp4",
        "pic.png",
        "sub/b.mp4",
    ]
    assert {p.name for p, _ in skipped} == {".hidden.mp4", "x.partial.mp4"}


# --- the command line (in-process: each subprocess would import torch again) ----------------


def cli(*args: str) -> int:
    return main(
        ["convert", *args, "--untrained", "--no-cache", "--no-progress", "--style-size", "32"]
    )


@pytest.fixture(scope="module")
def style() -> str:
    return str(shared_path("data", "style", "mosaic.jpg"))


def test_cli_errors_are_one_line_and_overwrite_nothing(
    tmp_path: Path, style: str, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_clip(tmp_path / "src.mp4", frames=3)
    cases: list[tuple[list[str], str]] = []
    cases.append(([str(tmp_path / "missing.mp4"), "-o", str(tmp_path / "o1.mp4")], "not found"))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    cases.append(([str(junk), "-o", str(tmp_path / "o2.mp4")], "not a readable media file"))
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"precious")
    cases.append(([str(src), "-o", str(existing)], "--overwrite"))
    cases.append(([str(src), "-o", str(tmp_path / "nodir" / "o.mp4")], "does not exist"))
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        cases.append(([str(src), "-o", str(ro / "o.mp4")], "not writable"))
    for argv, msg in cases:
        assert cli(*argv, "--style", style) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0] and "Traceback" not in err[0], err
    assert existing.read_bytes() == b"precious"
    assert not (tmp_path / "o1.mp4").exists() and not (tmp_path / "o2.mp4").exists()


def test_cli_folder_converts_videos_and_images_and_lists_skipped(
    tmp_path: Path, style: str, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "in"
    d.mkdir()
    make_clip(d / "clip.mp4", frames=3, audio="aac")
    from PIL import Image

    Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(d / "pic.png")
    (d / "notes.txt").write_text("not media")
    out = tmp_path / "out"
    assert cli(str(d), "-o", str(out), "--style", style, "--resolution", "32") == 0
    text = capsys.readouterr().out
    assert frame_times(out / "clip.mp4") == frame_times(d / "clip.mp4")
    assert Image.open(out / "pic.png").size == (30, 20)
    assert "skipped 1 file" in text and "notes.txt" in text


@pytest.mark.slow
def test_cli_sigterm_finalises_then_resume_finishes(tmp_path: Path, style: str) -> None:
    src = make_clip(tmp_path / "src.mp4", frames=30, size=(64, 48), audio="aac")
    dst = tmp_path / "out.mp4"
    base = [
        sys.executable,
        "-m",
        "realtime.cli",
        "convert",
        str(src),
        "-o",
        str(dst),
        "--style",
        style,
        "--untrained",
        "--no-cache",
        "--style-size",
        "32",
        "--batch",
        "1",
        "--resolution",
        "32",
    ]
    proc = subprocess.Popen(base, cwd=REPO, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    buf = ""
    while not re.search(r"\b([2-9]|1[0-9])/30\b", buf):  # the bar shows a few frames done
        ch = proc.stderr.read(1)
        if not ch:
            break
        buf += ch
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, buf + err
    assert "--resume" in err and str(partial_path(dst)) in err
    done = len(frame_times(partial_path(dst)))
    assert 0 < done < 30
    r = subprocess.run([*base, "--resume"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert frame_times(dst) == frame_times(src)
    assert packets_bytes(dst) == packets_bytes(src)
    assert f"after {done} finished frames" in r.stderr


@pytest.mark.slow
def test_cli_shared_video_end_to_end(tmp_path: Path, style: str) -> None:
    src = shared_path("data", "video", "webcam_person_audio.avi")
    dst = tmp_path / "out.mp4"
    assert (
        cli(
            str(src),
            "-o",
            str(dst),
            "--style",
            style,
            "--resolution",
            "32",
            "--preset",
            "ultrafast",
        )
        == 0
    )
    assert frame_times(dst) == frame_times(src)
    assert packets_bytes(dst) == packets_bytes(src)
