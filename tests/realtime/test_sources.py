"""Sources: test pattern, camera (fake capture: BGR edge, loss and return), files, folders."""

from __future__ import annotations

import threading
import time
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.errors import InputError
from realtime.images import write_image
from realtime.pipeline import Pipeline, passthrough
from realtime.sinks import NullSink
from realtime.sources import (
    CameraRequest,
    CameraSource,
    FileSource,
    ImageFolderSource,
    TestPatternSource,
    open_source,
)


def test_test_pattern_is_deterministic_rgb_and_moves() -> None:
    src = TestPatternSource(64, 48, fps=30, realtime=False, frames=3)
    info = src.open()
    assert (info.width, info.height, info.live, info.frame_count) == (64, 48, False, 3)
    frames = [src.read() for _ in range(4)]
    assert frames[3] is None
    a, b = frames[0], frames[1]
    assert a is not None and b is not None
    assert a.image.shape == (48, 64, 3) and a.image.dtype == np.uint8
    assert a.pts == 0 and b.pts == pytest.approx(1 / 30)
    assert not np.array_equal(a.image, b.image)  # the scene moves
    assert np.array_equal(a.image, src.render(0))  # and is reproducible
    # colour bars: leftmost white, 6th bar red (RGB order)
    assert a.image[2, 1].tolist() == [255, 255, 255]
    assert a.image[2, 64 * 5 // 8 + 2].tolist() == [255, 0, 0]


def test_test_pattern_realtime_paces_and_interrupts() -> None:
    src = TestPatternSource(32, 32, fps=50, realtime=True)
    src.open()
    t0 = time.perf_counter()
    for _ in range(11):
        assert src.read() is not None
    assert 0.18 <= time.perf_counter() - t0 < 0.6  # 10 intervals of 20 ms, not a burst
    slow = TestPatternSource(32, 32, fps=0.5, realtime=True)
    slow.open()
    slow.read()
    t1 = time.perf_counter()
    threading.Timer(0.05, slow.interrupt).start()
    assert slow.read() is None and time.perf_counter() - t1 < 1.0


class FakeCapture:
    """A camera that yields BGR frames, can be unplugged and plugged back."""

    def __init__(self, world: FakeWorld) -> None:
        self.world = world
        self.opened = world.present
        self.props: dict[int, float] = {}

    def isOpened(self) -> bool:
        return self.opened

    def read(self) -> tuple[bool, np.ndarray | None]:
        if not (self.opened and self.world.present):
            return False, None
        time.sleep(0.002)
        bgr = np.zeros((24, 32, 3), np.uint8)
        bgr[..., 0] = 255  # blue in OpenCV's order
        self.world.reads += 1
        return True, bgr

    def set(self, prop: int, value: float) -> bool:
        self.props[prop] = value
        return True

    def get(self, prop: int) -> float:
        return {cv2.CAP_PROP_FPS: 25.0}.get(prop, 0.0)

    def release(self) -> None:
        self.opened = False


class FakeWorld:
    def __init__(self) -> None:
        self.present = True
        self.reads = 0
        self.opens = 0

    def opener(self, device: int | str) -> FakeCapture:
        self.opens += 1
        return FakeCapture(self)


def test_camera_reports_what_it_delivers_and_converts_bgr_to_rgb() -> None:
    world = FakeWorld()
    logs: list[str] = []
    cam = CameraSource(0, CameraRequest(1280, 720, 30), opener=world.opener, log=logs.append)
    info = cam.open()
    assert (info.width, info.height, info.fps, info.live) == (32, 24, 25.0, True)
    assert any("delivers 32x24@25" in m for m in logs)
    frame = cam.read()
    assert frame is not None
    assert frame.image[0, 0].tolist() == [0, 0, 255]  # blue stays blue, as RGB
    cam.close()


def test_camera_loss_shows_placeholder_and_reconnects() -> None:
    world = FakeWorld()
    logs: list[str] = []
    cam = CameraSource(
        "/dev/video7",
        opener=world.opener,
        retry_interval=0.05,
        placeholder_interval=0.01,
        log=logs.append,
    )
    cam.open()
    assert cam.read() is not None
    world.present = False  # unplugged
    lost = [cam.read() for _ in range(5)]
    assert all(f is not None and f.info.get("placeholder") for f in lost)
    assert cam.lost and any("lost" in m for m in logs)
    assert lost[0] is not None and lost[0].image.shape == (24, 32, 3)  # same size as before
    world.present = True  # plugged back
    deadline = time.perf_counter() + 2
    back = None
    while time.perf_counter() < deadline:
        back = cam.read()
        if back is not None and not back.info.get("placeholder"):
            break
    assert back is not None and not back.info.get("placeholder")
    assert cam.reconnects == 1 and not cam.lost and any("back" in m for m in logs)
    idx = [f.index for f in lost]
    assert idx == sorted(idx) and back.index > idx[-1]  # indices keep rising
    cam.close()


def test_camera_loss_inside_the_pipeline_keeps_running() -> None:
    world = FakeWorld()
    cam = CameraSource(
        0, opener=world.opener, retry_interval=0.05, placeholder_interval=0.01, log=lambda m: None
    )
    sink = NullSink()
    pipe = Pipeline(cam, passthrough, [sink], policy="live")

    def unplug_and_return() -> None:
        time.sleep(0.1)
        world.present = False
        time.sleep(0.2)
        world.present = True
        time.sleep(0.2)
        pipe.stop()

    threading.Thread(target=unplug_and_return).start()
    report = pipe.run()
    assert report.stopped_by == "stop requested" and report.threads_alive == ()
    assert cam.reconnects == 1 and sink.frames > 5


def test_no_camera_suggests_test_source() -> None:
    world = FakeWorld()
    world.present = False
    cam = CameraSource(3, opener=world.opener)
    with pytest.raises(InputError, match="--source test"):
        cam.open()


def test_open_source_parses_specs(tmp_path: Path) -> None:
    assert isinstance(open_source("test"), TestPatternSource)
    assert isinstance(open_source("0"), CameraSource)
    with pytest.raises(InputError, match="--source test"):
        open_source("/dev/video99")
    with pytest.raises(InputError, match="no such file"):
        open_source(str(tmp_path / "missing.mp4"))
    assert isinstance(open_source(str(tmp_path)), ImageFolderSource)
    assert isinstance(open_source("rtsp://example.invalid/stream"), FileSource)


def test_image_folder_in_name_order_resized_to_first(tmp_path: Path) -> None:
    for i, size in enumerate([(20, 30), (40, 60), (20, 30)]):
        write_image(tmp_path / f"f{i}.png", np.full((*size, 3), 10 * i, np.uint8))
    (tmp_path / "notes.txt").write_text("x")
    src = ImageFolderSource(tmp_path, fps=10)
    info = src.open()
    assert (info.width, info.height, info.frame_count) == (30, 20, 3)
    frames = [src.read() for _ in range(4)]
    assert frames[3] is None
    assert [f.image.shape for f in frames if f] == [(20, 30, 3)] * 3
    assert [int(f.image[0, 0, 0]) for f in frames if f] == [0, 10, 20]


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no images"):
        ImageFolderSource(tmp_path).open()


def _write_video(path: Path, n: int = 6, rate: int = 10) -> None:
    from realtime.video_io import VideoWriter, WriterSpec

    spec = WriterSpec(64, 48, time_base=Fraction(1, rate), rate=Fraction(rate), preset="ultrafast")
    with VideoWriter(path, spec, on_notice=lambda m: None) as w:
        for i in range(n):
            img = np.zeros((48, 64, 3), np.uint8)
            img[:, : 8 * (i + 1)] = 200
            w.write(img, i, 1)


def test_file_source_reads_every_frame_with_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path)
    src = FileSource(path)
    info = src.open()
    assert (info.width, info.height, info.live) == (64, 48, False)
    assert info.fps == pytest.approx(10)
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    src.close()
    assert len(frames) == 6
    assert [round(f.pts or 0, 3) for f in frames] == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]


def test_file_source_realtime_is_paced(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path, n=4, rate=20)
    src = FileSource(path, realtime=True)
    assert src.open().live
    t0 = time.perf_counter()
    while src.read() is not None:
        pass
    src.close()
    assert time.perf_counter() - t0 >= 0.14  # 4 frames at 20 fps: 3 intervals


def test_missing_file_is_a_one_line_input_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(InputError):
        FileSource(bad).open()


def test_url_source_through_pyav(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path, n=5)
    src = FileSource(path.resolve().as_uri())
    info = src.open()
    assert (info.width, info.height, info.live) == (64, 48, True)
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    src.close()
    assert len(frames) == 5 and frames[0].image.shape == (48, 64, 3)


def test_bad_url_is_an_input_error() -> None:
    with pytest.raises(InputError, match="cannot open"):
        FileSource("file:///nonexistent/definitely/missing.mp4").open()


def test_file_source_frames_carry_exact_timestamps_and_skip(tmp_path: Path) -> None:
    from realtime.pipeline import exact_timing
    from realtime.video_io import VideoReader

    path = tmp_path / "clip.mp4"
    _write_video(path, n=5, rate=10)
    seen: list[int] = []
    src = FileSource(
        path, reader=VideoReader(path), skip=lambda f: seen.append(f.index) or f.index < 2
    )
    src.open()
    frames = []
    while (f := src.read()) is not None:
        frames.append(f)
    src.close()
    assert seen == [0, 1, 2, 3, 4]
    assert [f.index for f in frames] == [2, 3, 4]
    with VideoReader(path) as r:  # the container's own integer timestamps, unrounded
        want = [(d.pts, d.duration, d.time_base) for d in r.frames()][2:]
    assert [exact_timing(f) for f in frames] == want
    assert [round(f.pts or 0, 3) for f in frames] == [0.2, 0.3, 0.4]
