"""Sinks: parsing, virtual camera through a registered test backend, recording, threading."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from models.errors import CastRTError, InputError
from realtime.pipeline import Frame, Pipeline, SourceInfo, passthrough
from realtime.sinks import (
    NullSink,
    RecordSink,
    SinkSpec,
    ThreadedSink,
    VirtualCameraSink,
    parse_sinks,
)
from realtime.sources import TestPatternSource

pyvirtualcam = pytest.importorskip("pyvirtualcam")


def test_parse_sinks() -> None:
    assert parse_sinks("window, vcam,record:out/a.mp4,null") == [
        SinkSpec("window"),
        SinkSpec("vcam"),
        SinkSpec("record", "out/a.mp4"),
        SinkSpec("null"),
    ]
    with pytest.raises(InputError, match="unknown sink"):
        parse_sinks("window,screen")
    with pytest.raises(InputError, match=r"record:OUT\.mp4"):
        parse_sinks("record")
    with pytest.raises(InputError, match="empty"):
        parse_sinks(" , ")


class RecordingBackend:
    """A pyvirtualcam backend that keeps what it receives (registered by the tests)."""

    instances: ClassVar[list[RecordingBackend]] = []

    def __init__(
        self, width: int, height: int, fps: float, fourcc: int, device: str | None, **kw: Any
    ) -> None:
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self.frames: list[np.ndarray] = []
        self.closed = False
        RecordingBackend.instances.append(self)

    def send(self, frame: np.ndarray) -> None:
        self.frames.append(frame.reshape(self.height, self.width, 3).copy())

    def close(self) -> None:
        self.closed = True

    def device(self) -> str:
        return "test-vcam"

    def native_fourcc(self) -> int:
        return self.fourcc


class FailingBackend:
    def __init__(self, **kw: Any) -> None:
        raise RuntimeError("device /dev/video10 does not exist\nsecond line")


@pytest.fixture
def vcam_backend() -> type[RecordingBackend]:
    RecordingBackend.instances.clear()
    pyvirtualcam.register_backend("castrt-test", RecordingBackend)
    pyvirtualcam.register_backend("castrt-failing", FailingBackend)
    return RecordingBackend


def _patches(h: int = 24, w: int = 36) -> np.ndarray:
    img = np.zeros((h, w, 3), np.uint8)
    img[:, : w // 3] = (255, 0, 0)
    img[:, w // 3 : 2 * w // 3] = (0, 255, 0)
    img[:, 2 * w // 3 :] = (0, 0, 255)
    return img


class PatchSource:
    """``n`` RGB-patch frames."""

    def __init__(self, n: int) -> None:
        self.n, self.i = n, 0

    def open(self) -> SourceInfo:
        return SourceInfo(36, 24, 30.0, False, "patches")

    def read(self) -> Frame | None:
        if self.i >= self.n:
            return None
        self.i += 1
        return Frame(self.i - 1, _patches(), (self.i - 1) / 30)

    def close(self) -> None:
        pass


def test_vcam_sink_through_registered_backend_receives_rgb_frames(
    vcam_backend: type[RecordingBackend],
) -> None:
    sink = VirtualCameraSink(backend="castrt-test", log=lambda m: None)
    report = Pipeline(PatchSource(5), passthrough, [sink], policy="lossless").run()
    assert report.frames_written == 5
    (cam,) = vcam_backend.instances
    assert (cam.width, cam.height, cam.fps) == (36, 24, 30.0)
    assert len(cam.frames) == 5 and cam.closed
    got = cam.frames[0]
    assert got[5, 2].tolist() == [255, 0, 0]
    assert got[5, 18].tolist() == [0, 255, 0]
    assert got[5, 33].tolist() == [0, 0, 255]


def test_vcam_without_backend_is_one_line_and_other_sinks_continue(
    vcam_backend: type[RecordingBackend],
) -> None:
    logs: list[str] = []
    vcam = VirtualCameraSink(backend="castrt-failing", log=logs.append)
    other = NullSink()
    report = Pipeline(PatchSource(4), passthrough, [vcam, other], policy="lossless").run()
    assert other.frames == 4 and report.frames_written == 4
    assert vcam.disabled_reason is not None
    assert len(logs) == 1 and "\n" not in logs[0]
    assert "vcam: disabled" in logs[0] and "v4l2loopback" in logs[0]


def test_record_sink_writes_a_playable_file_with_every_frame(tmp_path: Path) -> None:
    from realtime.video_io import VideoReader

    out = tmp_path / "rec.mp4"
    sink = RecordSink(out, log=lambda m: None)
    src = TestPatternSource(64, 48, fps=25, realtime=False, frames=12)
    Pipeline(src, passthrough, [sink], policy="lossless").run()
    assert out.is_file() and not (tmp_path / "rec.partial.mp4").exists()
    with VideoReader(out) as r:
        frames = list(r.frames())
        assert (r.info.width, r.info.height) == (64, 48)
    assert len(frames) == 12
    assert frames[1].time == pytest.approx(1 / 25, abs=1e-3)
    # colour bars survive (lossy codec, so approximately): white then yellow
    first = frames[0].image.astype(int)
    assert np.abs(first[3, 2] - [255, 255, 255]).max() < 40


def test_record_sink_existing_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "rec.mp4"
    out.write_bytes(b"keep me")
    with pytest.raises(CastRTError, match="exists"):
        RecordSink(out).open(SourceInfo(32, 32, 30, True))
    assert out.read_bytes() == b"keep me"


def test_record_sink_uses_capture_times_when_no_pts(tmp_path: Path) -> None:
    from realtime.video_io import VideoReader

    out = tmp_path / "live.mp4"
    sink = RecordSink(out, log=lambda m: None)
    sink.open(SourceInfo(32, 32, 30, True))
    t0 = 100.0
    for i, dt in enumerate([0.0, 0.05, 0.2]):  # a dropped-frame gap between 2nd and 3rd
        sink.write(Frame(i, np.zeros((32, 32, 3), np.uint8), None, t0 + dt))
    sink.close()
    with VideoReader(out) as r:
        times = [f.time for f in r.frames()]
    assert times == pytest.approx([0.0, 0.05, 0.2], abs=2e-3)


class SlowSink(NullSink):
    name = "slow"

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.thread_names: set[str] = set()

    def write(self, frame: Frame) -> None:
        time.sleep(self.delay)
        self.thread_names.add(threading.current_thread().name)
        super().write(frame)


def test_threaded_sink_blocking_keeps_everything_and_runs_elsewhere() -> None:
    inner = SlowSink(0.005)
    sink = ThreadedSink(inner, capacity=2, block=True)
    sink.open(SourceInfo(8, 8, 30, True))
    for i in range(10):
        sink.write(Frame(i, np.zeros((8, 8, 3), np.uint8)))
    sink.close()
    assert inner.frames == 10 and sink.dropped == 0
    assert inner.thread_names == {"castrt-sink-slow"}


def test_threaded_sink_dropping_does_not_stall_the_caller() -> None:
    inner = SlowSink(0.05)
    sink = ThreadedSink(inner, capacity=1, block=False)
    sink.open(SourceInfo(8, 8, 30, True))
    t0 = time.perf_counter()
    for i in range(10):
        sink.write(Frame(i, np.zeros((8, 8, 3), np.uint8)))
    assert time.perf_counter() - t0 < 0.1
    sink.close()
    assert sink.dropped > 0 and inner.frames + sink.dropped == 10


def test_threaded_sink_error_surfaces() -> None:
    class Broken(NullSink):
        def write(self, frame: Frame) -> None:
            raise OSError("disk full")

    sink = ThreadedSink(Broken(), block=True)
    sink.open(SourceInfo(8, 8, 30, True))
    sink.write(Frame(0, np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(OSError, match="disk full"):
        for i in range(1, 50):
            time.sleep(0.01)
            sink.write(Frame(i, np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(OSError):
        sink.close()


def test_video_file_sink_writes_exact_timestamps_and_refuses_frames_without(
    tmp_path: Path,
) -> None:
    from fractions import Fraction

    from realtime.sinks import VideoFileSink
    from realtime.video_io import VideoReader, VideoWriter, WriterSpec

    tb = Fraction(1, 30000)
    spec = WriterSpec(32, 24, time_base=tb, rate=Fraction(30000, 1001), preset="ultrafast")
    writer = VideoWriter(tmp_path / "v.mp4", spec, on_notice=lambda m: None)
    sink = VideoFileSink(writer)
    sink.open(SourceInfo(32, 24, 29.97, False))
    img = np.zeros((24, 32, 3), np.uint8)
    for i in range(3):
        sink.write(Frame(i, img, info={"pts_int": i * 1001, "duration": 1001, "time_base": tb}))
    with pytest.raises(InputError, match="no exact timestamp"):
        sink.write(Frame(3, img, pts=0.1))
    sink.close()
    assert writer.close() == tmp_path / "v.mp4"
    with VideoReader(tmp_path / "v.mp4") as r:
        assert [(f.pts, f.time_base) for f in r.frames()] == [(i * 1001, tb) for i in range(3)]
