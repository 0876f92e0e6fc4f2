"""The threaded capture → process → sink pipeline: wiring, queue policies, stats, shutdown.

No model code lives here. The public API (used by ``castrt live``, ``castrt convert`` and the
HTTP control server)::

    Frame(index, image, pts, capture_time, info)   # image: uint8 (H, W, 3) RGB, frozen
    SourceInfo(width, height, fps, live, name, ...)
    class Source(Protocol):  open() -> SourceInfo; read() -> Frame | None; close()
                             # optional: interrupt() — make a blocked read() return soon
    class Sink(Protocol):    open(info); write(frame); close()
                             # optional: poll() — called while no frame is waiting
    Processor = Callable[[Frame, LiveSettings], Frame]
    BatchProcessor = Callable[[list[Frame], LiveSettings], list[Frame]]
    StylizeStage(engine, styles, ...)                # the stylize Processor
    Pipeline(source, processor, sinks, policy="live" | "lossless", settings=SettingsStore(),
             batch_size=1, batch_processor=None)
        .run(max_frames=None, stop_event=None) -> PipelineReport   # blocks; raises PipelineError
        .stop()                                                    # from any thread

Threads: the source runs in ``castrt-capture``, the processor in ``castrt-process``, and the
sinks in the thread that calls ``run()`` (GUI toolkits want the main thread). Stages are joined
by bounded channels:

* ``live``: capacity 1, latest frame wins — a frame that is not taken before the next one
  arrives is dropped and counted, so latency stays bounded whatever the slowest stage does.
* ``lossless``: blocking (capacity ``queue_size``) — a slow stage slows the source; nothing is
  ever dropped (files). With a ``batch_processor`` and ``batch_size`` N > 1 the process stage
  gathers up to N frames (fewer at the end of input) and hands them over in one call (a
  batched engine); frames keep their order. Live mode always processes one frame at a time.

Exact timestamps: ``Frame.pts`` is float seconds (enough for pacing and latency); sources that
know the container's integer timestamps (``FileSource``) also put ``pts_int``, ``duration``
(both in ``time_base`` units) and ``time_base`` (a Fraction) into ``Frame.info``, which sinks
that write files use (see ``exact_timing``).

Shutdown is explicit and ordered. End of input (or ``max_frames`` frames read) drains: every
frame already read is processed and written. ``stop()`` (hotkey, SIGINT/SIGTERM, a sink asking
to quit) aborts: the source stops, frames still queued are discarded and reported as ``left``
(lossless: frames already processed, and the batch in the processor when the stop came, are
still written, so a file holds every frame done so far).
Either way the source is closed by its own thread, sinks are closed (a recording is finalised),
and every thread is joined with a timeout; threads still alive are named in the report. An
exception in any stage stops the pipeline and ``run()`` raises one :class:`PipelineError`
naming the stage, after the same ordered shutdown — never a hang.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from models.errors import CastRTError, InputError
from models.fileio import first_line
from realtime.engine import EngineOutOfMemoryError, StylizeEngine
from realtime.settings import LiveSettings, SettingsStore
from realtime.stats import PipelineStats
from realtime.styles import StyleEntry
from realtime.temporal import TemporalStrategy, make_strategy

Policy = Literal["live", "lossless"]
POLICIES: tuple[str, ...] = ("live", "lossless")


class PipelineError(CastRTError):
    """A stage of the pipeline failed; the message names the stage and the cause.

    ``report`` is the :class:`PipelineReport` of the run that failed (None before it started).
    """

    def __init__(self, message: str, report: PipelineReport | None = None) -> None:
        super().__init__(message)
        self.report = report

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True, eq=False)
class Frame:
    """One video frame moving through the pipeline.

    ``image`` is uint8 (H, W, 3) RGB, C-contiguous; ``pts`` is the source timestamp in seconds
    (None if unknown); ``capture_time`` is ``time.perf_counter()`` when the source produced it
    (end-to-end latency is measured from it); ``info`` carries source-specific extras.
    """

    index: int
    image: np.ndarray
    pts: float | None = None
    capture_time: float = field(default_factory=time.perf_counter)
    info: Mapping[str, Any] = field(default_factory=dict)

    def with_image(self, image: np.ndarray, **info: Any) -> Frame:
        """The same frame (index, timestamps) carrying a new image and optional extra info."""
        merged = {**self.info, **info} if info else self.info
        return Frame(self.index, image, self.pts, self.capture_time, merged)


@dataclass(frozen=True)
class SourceInfo:
    """What a source really delivers (after opening; a camera may differ from the request)."""

    width: int
    height: int
    fps: float  # nominal rate; 0 if unknown
    live: bool  # True: frames arrive in real time (camera, paced); False: as fast as read
    name: str = ""
    frame_count: int | None = None  # None if unknown or endless
    time_base: Fraction | None = None  # of the container stream, for files
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class Source(Protocol):
    """Produces frames. ``read()`` returns None at the end of the input."""

    def open(self) -> SourceInfo: ...

    def read(self) -> Frame | None: ...

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Consumes frames. ``close()`` must flush and release everything (a file stays playable)."""

    name: str

    def open(self, info: SourceInfo) -> None: ...

    def write(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


Processor = Callable[[Frame, LiveSettings], Frame]
BatchProcessor = Callable[[list[Frame], LiveSettings], list[Frame]]


def exact_timing(frame: Frame) -> tuple[int, int, Fraction] | None:
    """``(pts, duration, time_base)`` of a frame from a source that knows the container's
    integer timestamps (see the module docstring); None otherwise."""
    info = frame.info
    if "pts_int" not in info or "time_base" not in info:
        return None
    return int(info["pts_int"]), int(info.get("duration") or 0), Fraction(info["time_base"])


def passthrough(frame: Frame, settings: LiveSettings) -> Frame:
    """A processor that returns the frame unchanged (tests, benchmarks of the I/O)."""
    return frame


class StylizeStage:
    """The stylize processor: engine + temporal strategy, driven by a settings snapshot.

    ``styles`` is a list shared with controllers; it may grow while running (the control
    server appends new styles), and ``style_index`` wraps around its length. The temporal
    strategy is rebuilt when the chosen name changes and reset on a style switch.

    ``step_down_on_oom`` (live mode): when the device runs out of memory, lower the engine's
    processing resolution as the error suggests, say so on stderr, and retry the frame,
    instead of ending the stream.
    """

    def __init__(
        self,
        engine: StylizeEngine,
        styles: list[StyleEntry],
        stats: PipelineStats | None = None,
        step_down_on_oom: bool = False,
    ) -> None:
        if not styles:
            raise InputError("no style given: pass --style FILE_OR_DIR")
        self.engine = engine
        self.styles = styles
        self.stats = stats
        self.step_down_on_oom = step_down_on_oom
        self._strategy: TemporalStrategy | None = None
        self._strategy_name = ""
        self._style_index = -1

    def current_style(self, settings: LiveSettings) -> StyleEntry:
        return self.styles[settings.style_index % len(self.styles)]

    def __call__(self, frame: Frame, settings: LiveSettings) -> Frame:
        if not settings.stylize or frame.info.get("placeholder"):
            return frame
        while True:
            try:
                return self._stylize(frame, settings)
            except EngineOutOfMemoryError as e:
                if not (self.step_down_on_oom and e.suggested):
                    raise
                self.engine.set_resolution(e.suggested)
                h, w = e.size
                print(
                    f"castrt: out of memory at {w}x{h}; stylizing at {e.suggested}p from now "
                    "on (--process-size sets it at start)",
                    file=sys.stderr,
                )

    def _stylize(self, frame: Frame, settings: LiveSettings) -> Frame:
        index = settings.style_index % len(self.styles)
        entry = self.styles[index]
        name = settings.temporal if settings.temporal_enabled else "off"
        if self._strategy is None or name != self._strategy_name:
            self.engine.content_stats_hook = None  # a previous strategy's hook must not linger
            self._strategy = make_strategy(name)
            self._strategy_name = name
        elif index != self._style_index:
            self._strategy.reset()
        self._style_index = index
        if name == "off":
            out = self._stylize_timed(frame.image, entry, settings)
        else:
            t0 = time.perf_counter()
            out = self._strategy.step(frame.image, self.engine, entry.code, settings.alpha)
            self._record("model+smoothing", t0)
        return frame.with_image(out, style=entry.name)

    def _record(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        if self.stats is not None:
            self.stats.record_stage(stage, (now - since) * 1000.0)
        return now

    def _stylize_timed(self, image: np.ndarray, entry: StyleEntry, s: LiveSettings) -> np.ndarray:
        """One frame through the engine with upload / model / download timed separately."""
        engine = self.engine
        if self.stats is None or not hasattr(engine, "stylize_u8"):
            return engine.process(image, entry.code, s.alpha, s.preserve_color)
        t0 = time.perf_counter()
        u8 = engine.upload_uint8([image])  # (1, H, W, 3) uint8 on the device
        _sync(u8)  # attribute the copy to "upload" (tiny; the download synchronises anyway)
        t1 = self._record("upload", t0)
        y = engine.stylize_u8(u8, entry.code, s.alpha, s.preserve_color)  # CUDA graph if on
        _sync(y)
        t2 = self._record("model", t1)
        out: np.ndarray = engine.download_u8(y)[0]
        self._record("download", t2)
        return out


def _sync(t: Any) -> None:
    """Wait for the device work producing ``t`` (CUDA only; a no-op on the CPU)."""
    if getattr(t, "is_cuda", False):
        import torch

        torch.cuda.current_stream(t.device).synchronize()


class _End:
    """End-of-stream marker travelling through the channels."""


END = _End()
_NOTHING = object()


class FrameChannel:
    """Bounded hand-over between two stage threads.

    ``drop_oldest=True`` (live): ``put`` never blocks; when full the oldest item is dropped and
    counted. ``drop_oldest=False`` (lossless): ``put`` waits for room (until aborted). The end
    marker is always accepted and never dropped.
    """

    def __init__(self, capacity: int, drop_oldest: bool) -> None:
        if capacity < 1:
            raise ValueError("channel capacity must be >= 1")
        self.capacity = capacity
        self.drop_oldest = drop_oldest
        self.dropped = 0
        self._items: deque[Any] = deque()
        self._cond = threading.Condition()
        self._aborted = False

    def put(self, item: Any) -> bool:
        """Hand over ``item``; False if the channel was aborted (the item is discarded)."""
        with self._cond:
            if self._aborted:
                return False
            if item is not END:
                if self.drop_oldest:
                    while len(self._items) >= self.capacity:
                        self._items.popleft()
                        self.dropped += 1
                else:
                    while len(self._items) >= self.capacity and not self._aborted:
                        self._cond.wait(0.1)
                    if self._aborted:
                        return False
            self._items.append(item)
            self._cond.notify_all()
            return True

    def get(self, timeout: float) -> Any:
        """The next item, END, or ``_NOTHING`` after ``timeout`` s (or when aborted)."""
        with self._cond:
            if not self._items and not self._aborted:
                self._cond.wait(timeout)
            if self._aborted or not self._items:
                return _NOTHING
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def abort(self) -> int:
        """Wake everyone, refuse further items; returns how many frames were left inside."""
        with self._cond:
            self._aborted = True
            left = sum(1 for x in self._items if x is not END)
            self._items.clear()
            self._cond.notify_all()
            return left


@dataclass(frozen=True)
class PipelineReport:
    """What a run did and how it ended."""

    frames_read: int
    frames_processed: int
    frames_written: int
    dropped_capture: int  # live: frames replaced before the processor took them
    dropped_output: int  # live: processed frames replaced before the sinks took them
    left: int  # frames discarded at an aborted shutdown
    elapsed_s: float
    stopped_by: str  # "end of input" | "max frames" | "stop requested" | "error"
    threads_alive: tuple[str, ...]
    stats: Mapping[str, Any]
    error: str | None = None

    @property
    def dropped(self) -> int:
        return self.dropped_capture + self.dropped_output

    @property
    def fps(self) -> float:
        return self.frames_written / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def summary(self) -> str:
        """One line for the terminal."""
        s = self.stats
        text = (
            f"{self.frames_written} frames out of {self.frames_read} read in {self.elapsed_s:.1f} s "
            f"({self.fps:.1f} fps), dropped {self.dropped}, left {self.left}, "
            f"latency p50 {s.get('latency_ms_p50', 0):.1f} ms p95 {s.get('latency_ms_p95', 0):.1f} ms, "
            f"stopped by {self.stopped_by}"
        )
        if self.threads_alive:
            text += f"; threads still alive: {', '.join(self.threads_alive)}"
        return text


class Pipeline:
    """Source → processor → sinks on threads with bounded channels (see the module docstring)."""

    def __init__(
        self,
        source: Source,
        processor: Processor | None,
        sinks: Sequence[Sink],
        policy: Policy = "live",
        settings: SettingsStore | None = None,
        stats: PipelineStats | None = None,
        queue_size: int = 2,
        join_timeout: float = 5.0,
        poll_interval: float = 0.02,
        batch_size: int = 1,
        batch_processor: BatchProcessor | None = None,
    ) -> None:
        if policy not in POLICIES:
            raise InputError(f"unknown pipeline policy {policy!r} (choose live or lossless)")
        if batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {batch_size}")
        if processor is None and batch_processor is None:
            raise InputError("a pipeline needs a processor or a batch processor")
        self.source = source
        self.processor = processor
        self.batch_processor = batch_processor
        # live: one frame at a time whatever is asked (latency); lossless: up to batch_size
        self.batch_size = batch_size if policy == "lossless" else 1
        self.sinks = list(sinks)
        self.policy: Policy = policy
        self.settings = settings or SettingsStore()
        self.stats = stats or PipelineStats()
        self.queue_size = 1 if policy == "live" else max(1, queue_size)
        self.join_timeout = join_timeout
        self.poll_interval = poll_interval
        self.info: SourceInfo | None = None
        self._opened = False
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._error: tuple[str, BaseException] | None = None
        self._reached_max = False
        self._frames_read = 0
        self._frames_processed = 0
        self._frames_written = 0
        self._left_in_process = 0

    # -- control -------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the pipeline to stop soon (any thread, signal handlers included)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _fail(self, stage: str, exc: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = (stage, exc)
        self._stop.set()

    # -- stage loops ---------------------------------------------------------------------

    def _capture_loop(self, out: FrameChannel, max_frames: int | None) -> None:
        try:
            while not self._stop.is_set():
                if max_frames is not None and self._frames_read >= max_frames:
                    self._reached_max = True
                    break
                t0 = time.perf_counter()
                frame = self.source.read()
                if frame is None:
                    break
                # work done after the frame became available (not a camera's or pacer's wait)
                ready = max(t0, frame.capture_time)
                self.stats.record_stage("capture", (time.perf_counter() - ready) * 1000.0)
                self._frames_read += 1
                self.stats.count("frames_in")
                if not out.put(frame):
                    break
                self.stats.set_counter("dropped_capture", out.dropped)
        except BaseException as exc:
            self._fail("capture", exc)
        finally:
            try:
                self.source.close()
            except BaseException as exc:
                self._fail("capture", exc)
            out.put(END)

    def _process_loop(self, inp: FrameChannel, out: FrameChannel) -> None:
        try:
            while True:
                item = inp.get(self.poll_interval * 5)
                if item is _NOTHING:
                    if self._stop.is_set():
                        return
                    continue
                if item is END:
                    break
                if self._stop.is_set():
                    self._left_in_process += 1  # stopping: unprocessed frames are discarded
                    return
                batch = [item]
                ended = self._gather(inp, batch)
                settings = self.settings.get()
                t0 = time.perf_counter()
                results = self._process(batch, settings)
                per_frame_ms = (time.perf_counter() - t0) * 1000.0 / len(batch)
                for result in results:
                    self.stats.record_stage("process", per_frame_ms)
                    self._frames_processed += 1
                    if not out.put(result):
                        return
                self.stats.set_counter("dropped_output", out.dropped)
                if ended:
                    break
        except BaseException as exc:
            self._fail("process", exc)
        finally:
            out.put(END)

    def _gather(self, inp: FrameChannel, batch: list[Frame]) -> bool:
        """Fill ``batch`` up to ``batch_size`` frames; True when END was taken (the batch is
        the last). Returns early, leaving a short batch, when the pipeline is stopping."""
        while len(batch) < self.batch_size and not self._stop.is_set():
            item = inp.get(self.poll_interval * 5)
            if item is _NOTHING:
                continue
            if item is END:
                return True
            batch.append(item)
        return False

    def _process(self, batch: list[Frame], settings: LiveSettings) -> list[Frame]:
        """Run the processor over ``batch`` (one call of the batch processor if there is one)."""
        if self.batch_processor is None or (len(batch) == 1 and self.processor is not None):
            assert self.processor is not None
            return [self.processor(f, settings) for f in batch]
        results = list(self.batch_processor(batch, settings))
        if len(results) != len(batch):
            raise RuntimeError(
                f"the batch processor returned {len(results)} frames for {len(batch)}"
            )
        return results

    def _poll_sinks(self) -> None:
        for sink in self.sinks:
            poll = getattr(sink, "poll", None)
            if poll is not None:
                poll()

    def _sink_loop(self, inp: FrameChannel) -> None:
        stop_seen: float | None = None
        try:
            while True:
                item = inp.get(self.poll_interval)
                if item is _NOTHING:
                    if self._stop.is_set():
                        # lossless: the batch being processed when the stop came is still
                        # written (the processor ends with END), for up to join_timeout
                        if self.policy == "live" or self._error is not None:
                            return
                        now = time.monotonic()
                        stop_seen = now if stop_seen is None else stop_seen
                        if now - stop_seen >= self.join_timeout:
                            return
                    self._poll_sinks()
                    continue
                if item is END:
                    return
                for sink in self.sinks:
                    t0 = time.perf_counter()
                    sink.write(item)
                    self.stats.record_stage(
                        f"sink:{sink.name}", (time.perf_counter() - t0) * 1000.0
                    )
                self.stats.record_output(item.capture_time)
                self._frames_written += 1
        except BaseException as exc:
            self._fail("sink", exc)

    # -- run -----------------------------------------------------------------------------

    def open(self) -> SourceInfo:
        """Open the source (unless ``info`` is already set by an opened source), then every sink.

        If a sink fails to open, the sinks already opened and the source are closed again.
        ``run()`` calls this unless it was called before.
        """
        if self.info is None:
            self.info = self.source.open()
        opened: list[Sink] = []
        try:
            for sink in self.sinks:
                sink.open(self.info)
                opened.append(sink)
        except BaseException:
            for sink in reversed(opened):
                with contextlib.suppress(Exception):  # the first error is the one to report
                    sink.close()
            self.source.close()
            raise
        self._opened = True
        return self.info

    def run(
        self, max_frames: int | None = None, stop_event: threading.Event | None = None
    ) -> PipelineReport:
        """Open, run until end of input / ``max_frames`` / stop, shut down; see module doc."""
        if max_frames is not None and max_frames < 0:
            raise InputError(f"--max-frames must be >= 0, got {max_frames}")
        if stop_event is not None:
            self._stop = stop_event
        if not self._opened:
            self.open()
        drop = self.policy == "live"
        ch_in = FrameChannel(self.queue_size, drop_oldest=drop)
        ch_out = FrameChannel(self.queue_size, drop_oldest=drop)
        start = time.perf_counter()
        threads = [
            threading.Thread(
                target=self._capture_loop,
                args=(ch_in, max_frames),
                name="castrt-capture",
                daemon=True,
            ),
            threading.Thread(
                target=self._process_loop, args=(ch_in, ch_out), name="castrt-process", daemon=True
            ),
        ]
        for t in threads:
            t.start()
        try:
            self._sink_loop(ch_out)
        except BaseException as exc:  # KeyboardInterrupt in the calling thread
            self._fail("sink", exc)
        # ordered shutdown: stop the source, discard what is still queued, close the sinks
        aborted = self._stop.is_set()
        self._stop.set()
        interrupt = getattr(self.source, "interrupt", None)
        if interrupt is not None:
            with contextlib.suppress(Exception):
                interrupt()
        left = ch_in.abort() + ch_out.abort()
        deadline = time.monotonic() + self.join_timeout
        for t in threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        left += self._left_in_process
        for sink in self.sinks:
            try:
                sink.close()
            except BaseException as exc:
                self._fail(f"sink {sink.name} (close)", exc)
        elapsed = time.perf_counter() - start
        alive = tuple(t.name for t in threads if t.is_alive())
        error = self._error
        if error is not None:
            stopped_by = "error"
        elif aborted:
            stopped_by = "stop requested"
        elif self._reached_max:
            stopped_by = "max frames"
        else:
            stopped_by = "end of input"
        report = PipelineReport(
            frames_read=self._frames_read,
            frames_processed=self._frames_processed,
            frames_written=self._frames_written,
            dropped_capture=ch_in.dropped,
            dropped_output=ch_out.dropped,
            left=left,
            elapsed_s=elapsed,
            stopped_by=stopped_by,
            threads_alive=alive,
            stats=self.stats.snapshot(),
            error=None if error is None else f"{error[0]}: {first_line(error[1])}",
        )
        if error is not None:
            stage, cause = error
            if isinstance(cause, KeyboardInterrupt):
                raise cause
            raise PipelineError(f"{stage} stage failed: {first_line(cause)}", report) from cause
        return report
