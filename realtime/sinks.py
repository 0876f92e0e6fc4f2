"""Frame sinks behind the pipeline's ``Sink`` protocol (open / write / close, optional poll).

* ``NullSink``: counts frames (benchmarks).
* ``WindowSink``: an OpenCV window (resizable) with the HUD; keys go to a callback
  (``realtime.controls.Controls.handle_key``). Refuses clearly when there is no display
  (``cv2.imshow`` without one aborts the whole process).
* ``VirtualCameraSink``: pyvirtualcam; when no backend is usable it prints one line naming
  the fix and disables itself while the other sinks keep running.
* ``RecordSink``: a video file through ``realtime.video_io.VideoWriter`` (PyAV), timestamps
  from the frames, always finalised to a playable file on close.
* ``VideoFileSink``: frames with exact container timestamps (``pipeline.exact_timing``) into
  a ``VideoWriter`` its owner opened and finalises (offline conversion).
* ``ProgressSink``: a tqdm progress bar with fps and ETA.
* ``ThreadedSink``: runs another sink on its own thread behind a bounded queue, so a slow
  encoder or device does not stall the window.

``parse_sinks("window,vcam,record:OUT.mp4,null")`` turns ``--sink`` text into specs.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.errors import InputError
from models.fileio import first_line
from realtime.pipeline import Frame, Sink, SourceInfo, exact_timing

SINK_KINDS = ("window", "vcam", "record", "null")
NO_VCAM_FIX = (
    "load v4l2loopback (sudo modprobe v4l2loopback devices=1 exclusive_caps=1) on Linux, "
    "or install OBS Studio and start its virtual camera once on Windows/macOS"
)

Log = Callable[[str], None]


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class SinkSpec:
    """One parsed ``--sink`` item: a kind and an optional argument (record's path)."""

    kind: str
    arg: str = ""


def parse_sinks(text: str) -> list[SinkSpec]:
    """``"window,record:out.mp4"`` → specs; refuses unknown kinds and a record without a path."""
    specs: list[SinkSpec] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        kind, _, arg = item.partition(":")
        kind = kind.strip().lower()
        if kind not in SINK_KINDS:
            raise InputError(f"--sink: unknown sink {kind!r} (choose from {', '.join(SINK_KINDS)})")
        if kind == "record" and not arg:
            raise InputError("--sink record needs a file: record:OUT.mp4")
        specs.append(SinkSpec(kind, arg))
    if not specs:
        raise InputError(f"--sink is empty (choose from {', '.join(SINK_KINDS)})")
    return specs


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """``image`` at exactly width×height (unchanged if it already is)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


class NullSink:
    """Discards frames; counts them."""

    name = "null"

    def __init__(self) -> None:
        self.frames = 0

    def open(self, info: SourceInfo) -> None:
        self.frames = 0

    def write(self, frame: Frame) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


# -- window ------------------------------------------------------------------------------


def display_available() -> bool:
    """True when a window can be opened (an X11 or Wayland display on Linux)."""
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _point_qt_at_system_fonts() -> None:
    """opencv-python's Qt ships no fonts and warns on every window; use the system's if any."""
    current = os.environ.get("QT_QPA_FONTDIR")
    if current and os.path.isdir(current):
        return  # (opencv-python sets it to its own, missing, fonts folder)
    for folder in ("/usr/share/fonts/truetype", "/usr/share/fonts"):
        if os.path.isdir(folder):
            os.environ["QT_QPA_FONTDIR"] = folder  # read by Qt when the first window opens
            return


class WindowSink:
    """An OpenCV window showing the frames, with the HUD when ``hud_text`` returns lines."""

    name = "window"

    def __init__(
        self,
        title: str = "CAST-RT",
        on_key: Callable[[int], object] | None = None,
        hud_text: Callable[[Frame], list[str]] | None = None,
        on_closed: Callable[[], None] | None = None,
    ) -> None:
        self.title = title
        self.on_key = on_key
        self.hud_text = hud_text
        self.on_closed = on_closed
        self.last_frame: Frame | None = None  # what was shown, without the HUD
        self._open = False

    def open(self, info: SourceInfo) -> None:
        if not display_available():
            raise InputError(
                "--sink window: no display (DISPLAY is not set); use --sink null, vcam or "
                "record:OUT.mp4, or run under a desktop session or Xvfb"
            )
        _point_qt_at_system_fonts()
        try:
            # resizable, aspect kept, no Qt toolbar/status bar over the picture
            flags = cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL
            cv2.namedWindow(self.title, flags)
            cv2.resizeWindow(self.title, info.width, info.height)
        except cv2.error as exc:
            raise InputError(
                f"--sink window: OpenCV cannot open a window ({first_line(exc)})"
            ) from None
        self._open = True

    def _keys(self) -> None:
        code = cv2.waitKeyEx(1)
        if code >= 0 and self.on_key is not None:
            self.on_key(code)
        if self._open and cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1:
            self._open = False  # closed with the window manager's button
            if self.on_closed is not None:
                self.on_closed()

    def write(self, frame: Frame) -> None:
        if not self._open:
            return
        self.last_frame = frame
        image = frame.image
        if self.hud_text is not None:
            lines = self.hud_text(frame)
            if lines:
                from realtime.hud import draw_hud

                image = draw_hud(image, lines)
        cv2.imshow(self.title, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        self._keys()

    def poll(self) -> None:
        if self._open:
            self._keys()

    def close(self) -> None:
        if self._open:
            self._open = False
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)


# -- virtual camera ------------------------------------------------------------------------


class VirtualCameraSink:
    """Sends frames to a virtual camera (pyvirtualcam); disabled with one line if unusable."""

    name = "vcam"

    def __init__(
        self,
        device: str | None = None,
        backend: str | None = None,
        fps: float = 0.0,
        log: Log = _stderr,
    ) -> None:
        self.device = device
        self.backend = backend
        self.fps = fps
        self.log = log
        self.camera: Any = None
        self.disabled_reason: str | None = None
        self.frames = 0
        self._size = (0, 0)

    def open(self, info: SourceInfo) -> None:
        try:
            import pyvirtualcam
        except ImportError:
            self.disabled_reason = "pyvirtualcam is not installed (pip install 'cast-rt[vcam]')"
            self.log(f"vcam: disabled: {self.disabled_reason}")
            return
        fps = self.fps or info.fps or 30.0
        try:
            self.camera = pyvirtualcam.Camera(
                info.width,
                info.height,
                fps,
                fmt=pyvirtualcam.PixelFormat.RGB,
                device=self.device,
                backend=self.backend,
            )
        except Exception as exc:  # pyvirtualcam raises RuntimeError/ValueError per backend
            lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
            self.disabled_reason = "; ".join(lines) or type(exc).__name__
            self.log(f"vcam: disabled ({self.disabled_reason}); to enable it, {NO_VCAM_FIX}")
            return
        self._size = (info.width, info.height)
        self.log(f"vcam: sending {info.width}x{info.height}@{fps:g} to {self.camera.device}")

    def write(self, frame: Frame) -> None:
        if self.camera is None:
            return
        self.camera.send(np.ascontiguousarray(_fit(frame.image, *self._size)))
        self.frames += 1

    def close(self) -> None:
        if self.camera is not None:
            self.camera.close()
            self.camera = None


# -- recording -----------------------------------------------------------------------------

RECORD_TIME_BASE = Fraction(1, 90000)


class RecordSink:
    """Records frames to a video file (PyAV) at their own timestamps.

    A frame's ``pts`` (seconds) is used when the source gives one, else its capture time
    relative to the first frame, so dropped frames leave the right gap (variable frame rate).
    """

    name = "record"

    def __init__(
        self,
        path: str | Path,
        codec: str = "libx264",
        crf: int = 20,
        preset: str = "veryfast",
        overwrite: bool = False,
        log: Log = _stderr,
    ) -> None:
        self.path = Path(path)
        self.codec = codec
        self.crf = crf
        self.preset = preset
        self.overwrite = overwrite
        self.log = log
        self.writer: Any = None
        self.frames = 0
        self._first_capture: float | None = None
        self._first_pts: float | None = None
        self._last_ticks = -1
        self._size = (0, 0)

    def open(self, info: SourceInfo) -> None:
        from realtime.video_io import VideoWriter, WriterSpec

        rate = Fraction(info.fps).limit_denominator(1001) if info.fps > 0 else None
        spec = WriterSpec(
            width=info.width,
            height=info.height,
            time_base=RECORD_TIME_BASE,
            rate=rate,
            codec=self.codec,
            crf=self.crf,
            preset=self.preset,
        )
        self.writer = VideoWriter(self.path, spec, overwrite=self.overwrite, on_notice=self.log)
        self._size = (info.width, info.height)

    def _ticks(self, frame: Frame) -> int:
        if frame.pts is not None:
            if self._first_pts is None:
                self._first_pts = frame.pts
            seconds = frame.pts - self._first_pts
        else:
            if self._first_capture is None:
                self._first_capture = frame.capture_time
            seconds = frame.capture_time - self._first_capture
        ticks = max(round(seconds / RECORD_TIME_BASE), self._last_ticks + 1)
        self._last_ticks = ticks
        return ticks

    def write(self, frame: Frame) -> None:
        self.writer.write(_fit(frame.image, *self._size), self._ticks(frame))
        self.frames += 1

    def close(self) -> None:
        if self.writer is None:
            return
        writer, self.writer = self.writer, None
        if self.frames == 0:
            writer.abort()
            self.log(f"record: no frame reached the recorder; {self.path} not written")
            return
        path = writer.close()
        self.log(f"record: wrote {self.frames} frames to {path}")


class VideoFileSink:
    """Writes each frame at its exact source timestamp into an open ``VideoWriter``.

    The writer belongs to the caller: it may already hold spliced packets (a resumed
    conversion), and only the caller knows whether the run completed, so it calls
    ``writer.close()`` (complete: rename into place) or ``writer.abort()`` (keep a playable
    partial file) after the pipeline returns. Frames without exact timing are refused.
    """

    name = "video"

    def __init__(self, writer: Any) -> None:
        self.writer = writer
        self.frames = 0

    def open(self, info: SourceInfo) -> None:
        spec = self.writer.spec
        if (info.width, info.height) != (spec.width, spec.height):
            raise InputError(
                f"source is {info.width}x{info.height}, the writer expects "
                f"{spec.width}x{spec.height}"
            )

    def write(self, frame: Frame) -> None:
        timing = exact_timing(frame)
        if timing is None or timing[2] != self.writer.spec.time_base:
            raise InputError(
                f"frame {frame.index} has no exact timestamp in the writer's time base "
                f"{self.writer.spec.time_base}"
            )
        pts, duration, _ = timing
        self.writer.write(frame.image, pts, duration)
        self.frames += 1

    def close(self) -> None:
        """Nothing to release here: the owner finalises the writer (see the class docstring)."""


class ProgressSink:
    """A tqdm bar on stderr counting written frames, with fps and ETA."""

    name = "progress"

    def __init__(self, total: int | None, desc: str = "", initial: int = 0) -> None:
        self.total = total
        self.desc = desc
        self.initial = initial
        self.bar: Any = None

    def open(self, info: SourceInfo) -> None:
        from tqdm import tqdm

        self.bar = tqdm(
            total=self.total or None,
            initial=self.initial,
            unit="frame",
            desc=self.desc,
            dynamic_ncols=True,
            file=sys.stderr,
            smoothing=0.1,
        )

    def write(self, frame: Frame) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# -- threading -----------------------------------------------------------------------------


class ThreadedSink:
    """Runs ``inner`` on its own thread behind a queue of ``capacity`` frames.

    ``block=False`` drops the oldest queued frame when full (counted in ``dropped``);
    ``block=True`` makes ``write`` wait for room. ``close`` writes what is queued, then closes
    ``inner``. An error in ``inner`` is raised by the next ``write`` or by ``close``.
    """

    def __init__(self, inner: Sink, capacity: int = 8, block: bool = False) -> None:
        self.inner = inner
        self.name = inner.name
        self.capacity = max(1, capacity)
        self.block = block
        self.dropped = 0
        self._queue: deque[Frame | None] = deque()
        self._cond = threading.Condition()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def open(self, info: SourceInfo) -> None:
        self.inner.open(info)
        self._thread = threading.Thread(
            target=self._loop, name=f"castrt-sink-{self.name}", daemon=True
        )
        self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._queue:
                    self._cond.wait()
                item = self._queue.popleft()
                self._cond.notify_all()
            if item is None:
                return
            try:
                self.inner.write(item)
            except BaseException as exc:
                with self._cond:
                    self._error = exc
                    self._queue.clear()
                    self._cond.notify_all()
                return

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def write(self, frame: Frame) -> None:
        with self._cond:
            self._raise()
            if self.block:
                while len(self._queue) >= self.capacity and self._error is None:
                    self._cond.wait(0.1)
                self._raise()
            elif len(self._queue) >= self.capacity:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append(frame)
            self._cond.notify_all()

    def poll(self) -> None:
        poll = getattr(self.inner, "poll", None)
        if poll is not None:
            poll()

    def close(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            with self._cond:
                self._queue.append(None)
                self._cond.notify_all()
            self._thread.join(timeout)
            self._thread = None
        self.inner.close()
        self._raise()
