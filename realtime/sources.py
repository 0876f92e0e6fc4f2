"""Frame sources behind the pipeline's ``Source`` protocol (open / read / close / interrupt).

* ``CameraSource``: a webcam by index or device path through OpenCV; requests width, height,
  fps and MJPG, reports what the camera really delivers, and survives unplugging: while the
  camera is gone it yields placeholder frames saying so and reconnects when it returns.
* ``FileSource``: a video file (``realtime.video_io.VideoReader``, threaded PyAV decoding) or
  a URL (PyAV directly); paced to its own timestamps with ``realtime=True``, else as fast as
  the pipeline takes frames. Its frames carry the container's exact integer timestamps in
  ``Frame.info`` (``pts_int``, ``duration``, ``time_base``; see ``pipeline.exact_timing``), and
  it can verify-and-skip frames already done (a resumed ``castrt convert``).
* ``TestPatternSource``: a moving synthetic scene with colour bars and a clock, for tests and
  machines without a camera.
* ``ImageFolderSource``: the images of a folder in name order, as a frame sequence.

``open_source(spec, ...)`` builds one from the ``--source`` text: ``0`` / ``/dev/videoN`` /
``test`` / a folder / a file / a URL. Every image leaves a source as uint8 (H, W, 3) RGB;
OpenCV's BGR is converted here, at the edge.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import cv2
import numpy as np

from models.errors import InputError
from models.fileio import first_line
from realtime.images import is_image_path, read_image
from realtime.pipeline import Frame, SourceInfo

if TYPE_CHECKING:
    from realtime.video_io import DecodedFrame, VideoReader

NO_CAMERA_HINT = "use --source test (a synthetic moving scene) or --source VIDEO_FILE"


class Pacer:
    """Sleeps so that frame ``n`` is released at ``start + t_n`` (interruptible)."""

    def __init__(self, wake: threading.Event) -> None:
        self._wake = wake
        self._t0: float | None = None
        self._media0 = 0.0

    def reset(self) -> None:
        self._t0 = None

    def wait_until(self, media_time: float) -> None:
        """Block until ``media_time`` seconds (relative to the first call) have passed."""
        now = time.perf_counter()
        if self._t0 is None:
            self._t0, self._media0 = now, media_time
            return
        delay = (self._t0 + media_time - self._media0) - now
        if delay > 0:
            self._wake.wait(delay)
        elif delay < -0.25:  # far behind (a stall): restart the clock instead of bursting
            self._t0, self._media0 = now, media_time


# -- test pattern ----------------------------------------------------------------------


def _bars(width: int, height: int) -> np.ndarray:
    """SMPTE-like colour bars (RGB): white, yellow, cyan, green, magenta, red, blue, black."""
    colours = np.array(
        [
            [255, 255, 255],
            [255, 255, 0],
            [0, 255, 255],
            [0, 255, 0],
            [255, 0, 255],
            [255, 0, 0],
            [0, 0, 255],
            [0, 0, 0],
        ],
        np.uint8,
    )
    idx = np.minimum(np.arange(width) * len(colours) // max(width, 1), len(colours) - 1)
    return np.broadcast_to(colours[idx][None], (height, width, 3))


class TestPatternSource:
    """A moving synthetic scene (gradient, colour bars, a bouncing disc, a running clock).

    ``realtime=True`` paces frames at ``fps`` like a camera; otherwise frames come as fast as
    they are taken. ``frames=None`` is endless. Frame ``n`` is the same image on every run.
    """

    __test__ = False  # not a pytest class

    def __init__(
        self,
        width: int = 640,
        height: int = 360,
        fps: float = 30.0,
        realtime: bool = True,
        frames: int | None = None,
    ) -> None:
        if width < 16 or height < 16:
            raise InputError(f"test pattern must be at least 16x16, got {width}x{height}")
        if fps <= 0:
            raise InputError(f"test pattern fps must be > 0, got {fps}")
        self.width, self.height, self.fps = width, height, fps
        self.realtime, self.frames = realtime, frames
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        bg = np.stack(
            [40 + 80 * xx / width, 40 + 60 * yy / height, 90 + 60 * (1 - xx / width)], axis=-1
        ).astype(np.uint8)
        bar_h = max(2, height // 5)
        bg[:bar_h] = _bars(width, bar_h)
        self._background = np.ascontiguousarray(bg)
        self._index = 0
        self._wake = threading.Event()
        self._pacer = Pacer(self._wake)

    def open(self) -> SourceInfo:
        self._index = 0
        self._pacer.reset()
        self._wake.clear()
        return SourceInfo(
            self.width,
            self.height,
            self.fps,
            live=self.realtime,
            name="test pattern",
            frame_count=self.frames,
            time_base=Fraction(1, 1),
        )

    def render(self, n: int) -> np.ndarray:
        """Frame ``n`` of the pattern (uint8 RGB)."""
        img = self._background.copy()
        t = n / self.fps
        w, h = self.width, self.height
        r = max(4, min(w, h) // 8)
        # a disc bouncing across the lower part
        span_x, span_y = max(1, w - 2 * r), max(1, (h - h // 4) - 2 * r)
        px = int(abs((t * 0.37 * w) % (2 * span_x) - span_x)) + r
        py = h // 4 + int(abs((t * 0.29 * h) % (2 * span_y) - span_y)) + r
        cv2.circle(img, (px, py), r, (255, 128, 0), -1, cv2.LINE_AA)
        cv2.circle(img, (px, py), r // 2, (40, 40, 200), -1, cv2.LINE_AA)
        # sweeping hand of a clock, plus the time as text
        cx, cy, cr = w - r - 4, h // 4 + r + 4, r
        angle = 2 * np.pi * (t % 1.0)
        cv2.circle(img, (cx, cy), cr, (255, 255, 255), 2, cv2.LINE_AA)
        hand = (int(cx + cr * np.sin(angle)), int(cy - cr * np.cos(angle)))
        cv2.line(img, (cx, cy), hand, (255, 255, 255), 2, cv2.LINE_AA)
        scale = max(0.35, h / 720)
        text = f"{int(t // 60):02d}:{t % 60:06.3f}  #{n}"
        cv2.putText(
            img, text, (8, h - 10), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA
        )
        return img

    def read(self) -> Frame | None:
        if self.frames is not None and self._index >= self.frames:
            return None
        n = self._index
        if self.realtime:
            self._pacer.wait_until(n / self.fps)
            if self._wake.is_set():
                return None
        capture = time.perf_counter()
        img = self.render(n)
        self._index += 1
        return Frame(n, img, n / self.fps, capture)

    def interrupt(self) -> None:
        self._wake.set()

    def close(self) -> None:
        pass


class FrameListSource:
    """Frames already in memory (benchmarks, tests); paced at ``fps`` when ``realtime``."""

    def __init__(self, images: list[np.ndarray], fps: float = 30.0, realtime: bool = False) -> None:
        if not images:
            raise InputError("FrameListSource needs at least one frame")
        self.images = images
        self.fps = fps if fps > 0 else 30.0
        self.realtime = realtime
        self._index = 0
        self._wake = threading.Event()
        self._pacer = Pacer(self._wake)

    def open(self) -> SourceInfo:
        self._index = 0
        self._wake.clear()
        self._pacer.reset()
        h, w = self.images[0].shape[:2]
        return SourceInfo(
            w, h, self.fps, live=self.realtime, name="frames", frame_count=len(self.images)
        )

    def read(self) -> Frame | None:
        n = self._index
        if n >= len(self.images) or self._wake.is_set():
            return None
        if self.realtime:
            self._pacer.wait_until(n / self.fps)
            if self._wake.is_set():
                return None
        self._index += 1
        return Frame(n, self.images[n], n / self.fps, time.perf_counter())

    def interrupt(self) -> None:
        self._wake.set()

    def close(self) -> None:
        pass


# -- camera ----------------------------------------------------------------------------


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` a camera source uses (fakes implement it in tests)."""

    def isOpened(self) -> bool: ...

    def read(self) -> tuple[bool, np.ndarray | None]: ...

    def set(self, prop: int, value: float) -> bool: ...

    def get(self, prop: int) -> float: ...

    def release(self) -> None: ...


def _default_opener(device: int | str) -> Capture:
    """``cv2.VideoCapture(device)`` without OpenCV's multi-line warnings for a missing camera."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        cap: Capture = cv2.VideoCapture(device)
    finally:
        cv2.utils.logging.setLogLevel(level)
    return cap


@dataclass(frozen=True)
class CameraRequest:
    """What to ask the camera for (0: leave the driver's default)."""

    width: int = 1280
    height: int = 720
    fps: float = 30.0
    fourcc: str = "MJPG"


class CameraSource:
    """A webcam through OpenCV; placeholder frames and reconnection while it is gone."""

    def __init__(
        self,
        device: int | str,
        request: CameraRequest | None = None,
        opener: Callable[[int | str], Capture] = _default_opener,
        retry_interval: float = 1.0,
        placeholder_interval: float = 0.25,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.device = device
        self.request = request or CameraRequest()
        self.opener = opener
        self.retry_interval = retry_interval
        self.placeholder_interval = placeholder_interval
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self._cap: Capture | None = None
        self._pending: np.ndarray | None = None
        self._wake = threading.Event()
        self._index = 0
        self._lost_since: float | None = None
        self._next_retry = 0.0
        self._size = (self.request.width or 640, self.request.height or 480)
        self.reconnects = 0
        self.info: SourceInfo | None = None

    def _open_capture(self) -> Capture | None:
        """Open and configure the device; None if it is not there (or gives no frame)."""
        try:
            cap = self.opener(self.device)
        except Exception:  # OpenCV raises for some bad paths
            return None
        if not cap.isOpened():
            cap.release()
            return None
        r = self.request
        if r.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*r.fourcc[:4].ljust(4)))
        if r.width:
            cap.set(cv2.CAP_PROP_FRAME_WIDTH, r.width)
        if r.height:
            cap.set(cv2.CAP_PROP_FRAME_HEIGHT, r.height)
        if r.fps:
            cap.set(cv2.CAP_PROP_FPS, r.fps)
        return cap

    def open(self) -> SourceInfo:
        self._wake.clear()
        cap = self._open_capture()
        first = None
        if cap is not None:
            ok, first = cap.read()
            if not ok or first is None:
                cap.release()
                cap = None
        if cap is None or first is None:
            raise InputError(
                f"no camera at {self.device!r} (none connected or busy); {NO_CAMERA_HINT}"
            )
        self._cap = cap
        h, w = first.shape[:2]
        self._size = (w, h)
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        code = int(cap.get(cv2.CAP_PROP_FOURCC) or 0)
        fourcc = (
            "".join(chr((code >> (8 * i)) & 0xFF) for i in range(4)).strip("\0 ") if code else "?"
        )
        self._pending = first
        r = self.request
        self.info = SourceInfo(
            w,
            h,
            fps,
            live=True,
            name=f"camera {self.device}",
            extra={"fourcc": fourcc, "requested": f"{r.width}x{r.height}@{r.fps:g} {r.fourcc}"},
        )
        if (
            (r.width and r.width != w)
            or (r.height and r.height != h)
            or (r.fps and abs(fps - r.fps) > 0.5)
        ):
            self.log(
                f"camera {self.device}: asked for {r.width}x{r.height}@{r.fps:g} {r.fourcc}, "
                f"delivers {w}x{h}@{fps:g} {fourcc}"
            )
        return self.info

    def _placeholder(self) -> np.ndarray:
        w, h = self._size
        img = np.full((h, w, 3), 24, np.uint8)
        text = f"camera {self.device} lost - reconnecting..."
        scale = max(0.4, h / 720)
        cv2.putText(
            img, text, (12, h // 2), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 200, 0), 1, cv2.LINE_AA
        )
        return img

    def _frame(self, bgr: np.ndarray) -> Frame:
        rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if rgb.shape[1::-1] != self._size:  # keep one size for the sinks
            rgb = cv2.resize(rgb, self._size, interpolation=cv2.INTER_AREA)
        f = Frame(self._index, rgb, None, time.perf_counter())
        self._index += 1
        return f

    def read(self) -> Frame | None:
        while not self._wake.is_set():
            if self._cap is not None:
                pending = self._pending
                if pending is not None:
                    self._pending = None
                    return self._frame(pending)
                ok, bgr = self._cap.read()
                if ok and bgr is not None:
                    return self._frame(bgr)
                self._cap.release()
                self._cap = None
                self._lost_since = time.perf_counter()
                self._next_retry = self._lost_since + self.retry_interval
                self.log(f"camera {self.device}: lost; retrying every {self.retry_interval:g} s")
            # lost: show it, and try to come back
            now = time.perf_counter()
            if now >= self._next_retry:
                cap = self._open_capture()
                if cap is not None:
                    ok, bgr = cap.read()
                    if ok and bgr is not None:
                        self._cap = cap
                        self.reconnects += 1
                        self._lost_since = None
                        self.log(f"camera {self.device}: back")
                        return self._frame(bgr)
                    cap.release()
                self._next_retry = time.perf_counter() + self.retry_interval
            self._wake.wait(self.placeholder_interval)
            if self._wake.is_set():
                break
            f = Frame(
                self._index,
                self._placeholder(),
                None,
                time.perf_counter(),
                {"placeholder": True, "status": "camera lost"},
            )
            self._index += 1
            return f
        return None

    @property
    def lost(self) -> bool:
        return self._lost_since is not None

    def interrupt(self) -> None:
        self._wake.set()

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


# -- files and URLs ----------------------------------------------------------------------


def is_url(text: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) is not None


class FileSource:
    """A video file (via ``VideoReader``) or URL (via PyAV); optionally paced to its timestamps.

    ``reader``: an already opened ``VideoReader`` of ``path`` to take frames from (it is closed
    with the source). ``skip``: called with each decoded frame before it is handed out; True
    drops the frame (it may raise to refuse the input, e.g. a resume whose timestamps differ).
    """

    def __init__(
        self,
        path: str | Path,
        realtime: bool = False,
        *,
        reader: VideoReader | None = None,
        skip: Callable[[DecodedFrame], bool] | None = None,
    ) -> None:
        self.path = str(path)
        self.realtime = realtime
        self.reader = reader
        self.skip = skip
        self._wake = threading.Event()
        self._pacer = Pacer(self._wake)
        self._iter: Iterator[DecodedFrame] | None = None
        self._closer: Callable[[], None] | None = None

    def open(self) -> SourceInfo:
        self._wake.clear()
        if is_url(self.path) and self.reader is None:
            return self._open_url()
        from realtime.video_io import VideoReader

        reader = self.reader or VideoReader(self.path)
        self._closer = reader.close
        info = reader.info
        self._iter = reader.frames()
        return SourceInfo(
            info.width,
            info.height,
            float(info.rate) if info.rate else 0.0,
            live=self.realtime,
            name=Path(self.path).name,
            frame_count=info.frames or None,
            time_base=info.time_base,
            extra={"rate": info.rate, "path": self.path},
        )

    def _open_url(self) -> SourceInfo:
        import av

        try:
            container = av.open(self.path, mode="r", timeout=10.0)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise InputError(f"cannot open {self.path}: {first_line(exc)}") from None
        if not container.streams.video:
            container.close()
            raise InputError(f"no video stream in {self.path}")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        tb = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1000)
        rate = stream.average_rate or stream.guessed_rate
        w, h = stream.codec_context.width, stream.codec_context.height

        from realtime.video_io import DecodedFrame

        def frames() -> Iterator[DecodedFrame]:
            try:
                for i, vf in enumerate(container.decode(stream)):
                    pts = int(vf.pts) if vf.pts is not None else 0
                    yield DecodedFrame(i, vf.to_ndarray(format="rgb24"), pts, 0, tb)
            except av.error.FFmpegError as exc:
                print(f"note: {self.path}: stopped: {first_line(exc)}", file=sys.stderr)

        self._iter = frames()
        self._closer = container.close
        return SourceInfo(
            w, h, float(rate) if rate else 0.0, live=True, name=self.path, time_base=tb
        )

    def read(self) -> Frame | None:
        if self._iter is None or self._wake.is_set():
            return None
        start = time.perf_counter()
        item = next(self._iter, None)
        while item is not None and self.skip is not None and self.skip(item):
            if self._wake.is_set():
                return None
            item = next(self._iter, None)
        if item is None:
            return None
        t = item.time
        if self.realtime:
            self._pacer.wait_until(t)
            if self._wake.is_set():
                return None
            start = time.perf_counter()
        timing = {"pts_int": item.pts, "duration": item.duration, "time_base": item.time_base}
        return Frame(item.index, np.ascontiguousarray(item.image), t, start, timing)

    def interrupt(self) -> None:
        self._wake.set()

    def close(self) -> None:
        if self._closer is not None:
            self._closer()
            self._closer = None
        self._iter = None


# -- image folder ------------------------------------------------------------------------


class ImageFolderSource:
    """The images of a folder (name order) as frames at ``fps``; all resized to the first's size."""

    def __init__(
        self, folder: str | Path, fps: float = 30.0, realtime: bool = False, loop: bool = False
    ) -> None:
        self.folder = Path(folder)
        self.fps = fps if fps > 0 else 30.0
        self.realtime = realtime
        self.loop = loop
        self._files: list[Path] = []
        self._index = 0
        self._size = (0, 0)
        self._wake = threading.Event()
        self._pacer = Pacer(self._wake)

    def open(self) -> SourceInfo:
        if not self.folder.is_dir():
            raise InputError(f"{self.folder}: not a folder")
        self._files = sorted(p for p in self.folder.iterdir() if p.is_file() and is_image_path(p))
        if not self._files:
            raise InputError(f"{self.folder}: folder holds no images")
        first = read_image(self._files[0])
        h, w = first.shape[:2]
        self._size = (w, h)
        self._wake.clear()
        return SourceInfo(
            w,
            h,
            self.fps,
            live=self.realtime,
            name=self.folder.name,
            frame_count=None if self.loop else len(self._files),
            time_base=Fraction(1, 1),
        )

    def read(self) -> Frame | None:
        if self._wake.is_set():
            return None
        n = self._index
        if n >= len(self._files) and not self.loop:
            return None
        if self.realtime:
            self._pacer.wait_until(n / self.fps)
            if self._wake.is_set():
                return None
        img = read_image(self._files[n % len(self._files)])
        if img.shape[1::-1] != self._size:
            img = cv2.resize(img, self._size, interpolation=cv2.INTER_AREA)
        self._index += 1
        return Frame(
            n,
            np.ascontiguousarray(img),
            n / self.fps,
            time.perf_counter(),
            {"file": self._files[n % len(self._files)].name},
        )

    def interrupt(self) -> None:
        self._wake.set()

    def close(self) -> None:
        pass


# -- from --source text ----------------------------------------------------------------


@dataclass(frozen=True)
class SourceOptions:
    """Options that apply to whichever source ``--source`` names."""

    width: int = 1280
    height: int = 720
    fps: float = 30.0
    fourcc: str = "MJPG"
    realtime: bool = False  # files/folders: pace to timestamps
    loop: bool = False  # folders: start again at the end


def open_source(spec: str, options: SourceOptions | None = None, **camera_kw: Any) -> Any:
    """The source that ``--source`` text names (not opened yet)."""
    o = options or SourceOptions()
    text = spec.strip()
    if not text:
        raise InputError(f"--source is empty; {NO_CAMERA_HINT}")
    if text == "test":
        return TestPatternSource(o.width, o.height, o.fps, realtime=True)
    if text.isdigit():
        return CameraSource(
            int(text), CameraRequest(o.width, o.height, o.fps, o.fourcc), **camera_kw
        )
    if text.startswith("/dev/video"):
        if not Path(text).exists():
            raise InputError(f"no camera at {text}; {NO_CAMERA_HINT}")
        return CameraSource(text, CameraRequest(o.width, o.height, o.fps, o.fourcc), **camera_kw)
    if is_url(text):
        return FileSource(text, realtime=o.realtime)
    p = Path(text)
    if p.is_dir():
        return ImageFolderSource(p, o.fps, realtime=o.realtime, loop=o.loop)
    if p.is_file():
        return FileSource(p, realtime=o.realtime)
    raise InputError(f"--source {text!r}: no such file, folder or camera; {NO_CAMERA_HINT}")
