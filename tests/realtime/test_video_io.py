"""VideoReader / VideoWriter: exact frames, timestamps, sizes, streams; damage and abort."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from models.errors import InputError
from realtime.video_io import (
    OutputError,
    VideoReader,
    VideoWriter,
    WriterSpec,
    choose_pix_fmt,
    partial_path,
)
from tests.conftest import shared_path
from tests.realtime.videoclips import frame_times, make_clip, packets_bytes


def copy_through(src: Path, dst: Path, **spec_kw: object) -> tuple[VideoReader, VideoWriter]:
    """Decode ``src`` and re-encode every frame unchanged into ``dst`` (fast preset)."""
    r = VideoReader(src)
    i = r.info
    spec = WriterSpec(
        i.width,
        i.height,
        i.time_base,
        i.rate,
        preset="ultrafast",
        rotation=i.rotation,
        metadata=r.metadata,
        copy_from=src,
        **spec_kw,  # type: ignore[arg-type]
    )
    notes: list[str] = []
    w = VideoWriter(dst, spec, on_notice=notes.append)
    for f in r.frames():
        w.write(f.image, f.pts, f.duration)
    w.close()
    r.close()
    return r, w


def video_end(path: Path) -> Fraction:
    """End of the last frame (pts + duration) in seconds."""
    with VideoReader(path) as r:
        last = list(r.frames())[-1]
    return Fraction(last.pts + last.duration) * last.time_base


@pytest.mark.parametrize(
    "name", ["plane_pan_audio.mp4", "webcam_person_audio.avi", "pets_people_static_10s.avi"]
)
def test_shared_videos_keep_frames_times_size_and_audio(name: str, tmp_path: Path) -> None:
    src = shared_path("data", "video", name)
    dst = tmp_path / "out.mp4"
    r, _ = copy_through(src, dst)
    assert r.stopped is None
    assert frame_times(dst) == frame_times(src)
    with VideoReader(dst) as o:
        assert (o.info.width, o.info.height) == (r.info.width, r.info.height)
    assert packets_bytes(dst) == packets_bytes(src)
    assert abs(video_end(dst) - video_end(src)) < 1 / r.info.rate
    assert not partial_path(dst).exists()


def test_reader_reports_info_and_rgb_frames(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "a.mp4", size=(64, 48), frames=6)
    with VideoReader(src) as r:
        assert (r.info.width, r.info.height, r.info.frames) == (64, 48, 6)
        assert r.info.rate == 25 and r.info.rotation == 0
        frames = list(r.frames())
    assert [f.index for f in frames] == list(range(6))
    assert all(f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8 for f in frames)
    assert [f.time for f in frames] == pytest.approx([i / 25 for i in range(6)])
    assert all(f.duration * f.time_base == Fraction(1, 25) for f in frames)
    # RGB order: the clip's first frame has red growing with x
    red = frames[0].image[40, :, 0].astype(int)
    assert red[40] > red[4]


def test_ntsc_rate_rotation_and_metadata_are_kept(tmp_path: Path) -> None:
    src = make_clip(
        tmp_path / "ntsc.mp4",
        time_base=Fraction(1, 30000),
        rate=Fraction(30000, 1001),
        pts=[i * 1001 for i in range(12)],
        rotation=90,
        metadata={"title": "kept"},
    )
    dst = tmp_path / "out.mp4"
    copy_through(src, dst)
    with av.open(str(dst)) as c:
        assert c.streams.video[0].average_rate == Fraction(30000, 1001)
        assert c.metadata.get("title") == "kept"
    with VideoReader(dst) as o:
        assert o.info.rotation == 90
        assert o.info.rate == Fraction(30000, 1001)
    assert frame_times(dst) == [Fraction(i * 1001, 30000) for i in range(12)]


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_vfr_timestamps_and_last_duration_are_kept(suffix: str, tmp_path: Path) -> None:
    pts = [0, 1, 3, 4, 8, 9, 15, 16, 17, 30]
    src = make_clip(
        tmp_path / f"vfr{suffix}",
        pts=pts,
        time_base=Fraction(1, 30),
        rate=Fraction(30),
        audio="aac",
        last_duration=6,
    )
    dst = tmp_path / "out.mp4"
    copy_through(src, dst)
    assert frame_times(dst) == frame_times(src)
    assert [float(t) for t in frame_times(dst)] == pytest.approx([p / 30 for p in pts], abs=1e-3)
    assert video_end(dst) == video_end(src)
    assert float(video_end(dst)) == pytest.approx(36 / 30, abs=1e-3)
    assert packets_bytes(dst) == packets_bytes(src)


@pytest.mark.parametrize("size", [(338, 640), (37, 23)])
def test_sizes_are_exact_including_odd(size: tuple[int, int], tmp_path: Path) -> None:
    src = make_clip(tmp_path / "s.mkv", size=size, frames=3)
    dst = tmp_path / "out.mp4"
    _, w = copy_through(src, dst)
    with av.open(str(dst)) as c:
        s = c.streams.video[0]
        assert (s.codec_context.width, s.codec_context.height) == size
        odd = size[0] % 2 or size[1] % 2
        assert s.codec_context.format.name == ("yuv444p" if odd else "yuv420p")
    assert bool(w.notices) == bool(size[0] % 2 or size[1] % 2)


def test_choose_pix_fmt() -> None:
    assert choose_pix_fmt("libx264", 338, 640, None) == ("yuv420p", "")
    pix, note = choose_pix_fmt("libx264", 337, 640, None)
    assert pix == "yuv444p" and "odd" in note


def test_audio_the_container_refuses_is_reencoded_to_aac_with_notice(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "u8.mkv", audio="pcm_u8", frames=10)
    dst = tmp_path / "out.mp4"
    _, w = copy_through(src, dst)
    assert any("re-encoded to AAC" in n for n in w.notices)
    with av.open(str(dst)) as c:
        assert [s.codec_context.name for s in c.streams.audio] == ["aac"]


def test_subtitles_copied_where_the_container_takes_them_else_dropped(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "subs.mkv", frames=8, audio="aac", subtitles=True)
    assert packets_bytes(src, "subtitle") == [[b"first line", b"second line"]]
    kept = tmp_path / "out.mkv"
    _, w = copy_through(src, kept)
    assert packets_bytes(kept, "subtitle") == packets_bytes(src, "subtitle")
    assert packets_bytes(kept) == packets_bytes(src)
    assert not w.notices
    dropped = tmp_path / "out.mp4"
    _, w = copy_through(src, dropped)
    assert packets_bytes(dropped, "subtitle") == []
    assert any("dropped subtitle stream" in n for n in w.notices)
    assert packets_bytes(dropped) == packets_bytes(src)


def test_abort_leaves_a_playable_partial_file(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "a.mp4", frames=10, audio="aac")
    dst = tmp_path / "out.mp4"
    with VideoReader(src) as r:
        i = r.info
        w = VideoWriter(dst, WriterSpec(i.width, i.height, i.time_base, i.rate, copy_from=src))
        for f in list(r.frames())[:4]:
            w.write(f.image, f.pts, f.duration)
    where = w.abort()
    assert where == partial_path(dst) and where.exists() and not dst.exists()
    assert frame_times(where) == [Fraction(k, 25) for k in range(4)]
    assert packets_bytes(where)[0]  # audio up to the cut is there


def test_writer_refuses_existing_output_and_bad_folder(tmp_path: Path) -> None:
    spec = WriterSpec(16, 16, Fraction(1, 25), Fraction(25))
    out = tmp_path / "exists.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(OutputError, match="exists"):
        VideoWriter(out, spec)
    assert out.read_bytes() == b"keep me"
    with pytest.raises(OutputError, match="does not exist"):
        VideoWriter(tmp_path / "nope" / "x.mp4", spec)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        try:
            with pytest.raises(OutputError, match="not writable"):
                VideoWriter(ro / "x.mp4", spec)
        finally:
            ro.chmod(0o700)


def test_reader_refuses_missing_and_non_media(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        VideoReader(tmp_path / "missing.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video\n" * 50)
    with pytest.raises(InputError, match=r"not a readable media file|no decodable"):
        VideoReader(junk)
    img = tmp_path / "text.avi"
    img.write_text("hello")
    with pytest.raises(InputError):
        VideoReader(img)


def test_truncated_input_stops_cleanly_and_says_where(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "full.mkv", frames=30, size=(64, 48), codec="mpeg4")
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) * 6 // 10])
    with VideoReader(cut) as r:
        frames = list(r.frames())
        stop = r.stopped
    assert 0 < len(frames) < 30
    assert stop is None or stop.frame == len(frames)


def test_corrupt_input_converts_what_decodes(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "full.avi", frames=30, size=(64, 48), codec="mpeg4")
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 4000] = os.urandom(4000)
    bad = tmp_path / "bad.avi"
    bad.write_bytes(bytes(data))
    dst = tmp_path / "out.mp4"
    r, _ = copy_through(bad, dst)
    n = len(frame_times(dst))
    assert 0 < n <= 30
    if r.stopped is not None:
        assert r.stopped.frame == n and "stopped at frame" in str(r.stopped)


def test_cover_art_is_not_the_video_and_is_dropped_with_notice(tmp_path: Path) -> None:
    src = tmp_path / "cover.mp4"
    with av.open(str(src), "w") as o:
        cover = o.add_stream("mjpeg")
        cover.width, cover.height, cover.pix_fmt = 16, 16, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        v = o.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 32, 32, "yuv420p"
        pic = av.VideoFrame.from_ndarray(np.full((16, 16, 3), 200, np.uint8), format="rgb24")
        pic.pts = 0
        for p in [*cover.encode(pic), *cover.encode(None)]:
            o.mux(p)
        for i in range(5):
            f = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i * 40, np.uint8), format="rgb24")
            f.pts = i
            for p in v.encode(f):
                o.mux(p)
        for p in v.encode(None):
            o.mux(p)
    with VideoReader(src) as r:
        assert (r.info.width, r.info.height) == (32, 32)
        assert len(list(r.frames())) == 5
    _, w = copy_through(src, tmp_path / "out.mp4")
    assert any("dropped extra video stream" in n for n in w.notices)
    assert len(frame_times(tmp_path / "out.mp4")) == 5
