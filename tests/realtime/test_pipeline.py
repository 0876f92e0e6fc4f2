"""Pipeline wiring: policies, ordered shutdown, error propagation, stylize stage."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from realtime.pipeline import (
    END,
    Frame,
    FrameChannel,
    Pipeline,
    PipelineError,
    SourceInfo,
    passthrough,
)


class CountingSource:
    """``n`` small frames; optional pacing (``interval`` s per frame, like a camera)."""

    def __init__(self, n: int, interval: float = 0.0, size: tuple[int, int] = (8, 12)) -> None:
        self.n = n
        self.interval = interval
        self.size = size
        self.i = 0
        self.closed = False

    def open(self) -> SourceInfo:
        h, w = self.size
        return SourceInfo(w, h, 1 / self.interval if self.interval else 0.0, self.interval > 0)

    def read(self) -> Frame | None:
        if self.i >= self.n:
            return None
        if self.interval:
            time.sleep(self.interval)
        img = np.full((*self.size, 3), self.i % 256, np.uint8)
        self.i += 1
        return Frame(self.i - 1, img)

    def close(self) -> None:
        self.closed = True


class ListSink:
    def __init__(self, delay: float = 0.0, name: str = "list") -> None:
        self.name = name
        self.delay = delay
        self.frames: list[Frame] = []
        self.opened = self.closed = False

    def open(self, info: SourceInfo) -> None:
        self.opened = True

    def write(self, frame: Frame) -> None:
        if self.delay:
            time.sleep(self.delay)
        self.frames.append(frame)

    def close(self) -> None:
        self.closed = True


def _castrt_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("castrt-")]


def test_lossless_delivers_every_frame_in_order_and_leaves_no_thread() -> None:
    src, sink = CountingSource(40), ListSink()
    report = Pipeline(src, passthrough, [sink], policy="lossless").run()
    assert [f.index for f in sink.frames] == list(range(40))
    assert report.frames_written == 40 and report.dropped == 0 and report.left == 0
    assert report.stopped_by == "end of input"
    assert src.closed and sink.opened and sink.closed
    assert report.threads_alive == () and _castrt_threads() == []


def test_max_frames_counts_frames_read() -> None:
    sink = ListSink()
    report = Pipeline(CountingSource(100), passthrough, [sink], policy="lossless").run(max_frames=7)
    assert len(sink.frames) == 7 and report.stopped_by == "max frames"


def test_slow_sink_live_drops_and_bounds_latency_lossless_drops_none() -> None:
    interval, delay = 0.005, 0.03  # source 200 fps, sink ~33 fps
    live_sink = ListSink(delay)
    live = Pipeline(CountingSource(60, interval), passthrough, [live_sink], policy="live").run()
    assert live.dropped > 0
    assert live.frames_written + live.dropped + live.left == 60
    # latency is bounded by about one sink write + one frame in flight, not the backlog
    # (loose bound: CI machines are shared; unbounded growth would be ~60 × 30 ms)
    assert live.stats["latency_ms_p95"] < 8 * delay * 1000
    lossless_sink = ListSink(delay)
    lossless = Pipeline(
        CountingSource(60, interval), passthrough, [lossless_sink], policy="lossless"
    ).run()
    assert lossless.dropped == 0 and lossless.frames_written == 60
    assert [f.index for f in lossless_sink.frames] == list(range(60))


def test_stop_from_another_thread_aborts_promptly() -> None:
    src, sink = CountingSource(10_000, 0.002), ListSink()
    pipe = Pipeline(src, passthrough, [sink], policy="live")
    threading.Timer(0.2, pipe.stop).start()
    t0 = time.perf_counter()
    report = pipe.run()
    assert time.perf_counter() - t0 < 2.0
    assert report.stopped_by == "stop requested" and src.closed and sink.closed
    assert report.threads_alive == ()


def test_external_stop_event() -> None:
    ev = threading.Event()
    ev.set()
    report = Pipeline(CountingSource(10_000, 0.001), passthrough, [ListSink()]).run(stop_event=ev)
    assert report.stopped_by == "stop requested"


@pytest.mark.parametrize("stage", ["source", "process", "sink"])
def test_stage_error_becomes_one_pipeline_error(stage: str) -> None:
    class Boom(RuntimeError):
        pass

    src, sink = CountingSource(1000), ListSink()
    processor = passthrough
    if stage == "source":
        orig = src.read

        def read() -> Frame | None:
            if src.i == 5:
                raise Boom("camera on fire\nsecond line")
            return orig()

        src.read = read  # type: ignore[method-assign]
    elif stage == "process":

        def processor(frame: Frame, settings: object) -> Frame:  # type: ignore[misc]
            if frame.index == 5:
                raise Boom("model on fire")
            return frame
    else:
        orig_write = sink.write

        def write(frame: Frame) -> None:
            if frame.index == 5:
                raise Boom("disk on fire")
            orig_write(frame)

        sink.write = write  # type: ignore[method-assign]
    with pytest.raises(PipelineError) as info:
        Pipeline(src, processor, [sink], policy="lossless").run()
    msg = str(info.value)
    assert "on fire" in msg and "\n" not in msg
    assert info.value.report is not None and info.value.report.stopped_by == "error"
    assert src.closed and sink.closed and _castrt_threads() == []


def test_sink_open_failure_closes_what_was_opened() -> None:
    class BadSink(ListSink):
        def open(self, info: SourceInfo) -> None:
            raise OSError("no such device")

    src, good = CountingSource(3), ListSink()
    with pytest.raises(OSError):
        Pipeline(src, passthrough, [good, BadSink()]).run()
    assert good.closed and src.closed


def test_channel_live_keeps_latest_and_end_is_never_dropped() -> None:
    ch = FrameChannel(1, drop_oldest=True)
    for i in range(5):
        assert ch.put(i)
    assert ch.put(END)
    assert ch.dropped == 4
    assert ch.get(0.01) == 4 and ch.get(0.01) is END


def test_channel_lossless_blocks_until_aborted() -> None:
    ch = FrameChannel(1, drop_oldest=False)
    assert ch.put(1)
    result: list[bool] = []
    t = threading.Thread(target=lambda: result.append(ch.put(2)))
    t.start()
    time.sleep(0.1)
    assert t.is_alive()  # blocked: nothing dropped
    assert ch.abort() == 1
    t.join(1)
    assert result == [False]


class BatchRecorder:
    """A batch processor that records the size of every call and tags frames as processed."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, frames: list[Frame], settings: object) -> list[Frame]:
        self.sizes.append(len(frames))
        return [f.with_image(255 - f.image, batched=True) for f in frames]


def test_lossless_batches_of_n_with_a_short_last_batch_in_order() -> None:
    rec, sink = BatchRecorder(), ListSink(delay=0.002)
    p = Pipeline(
        CountingSource(11), None, [sink], policy="lossless", batch_size=4, batch_processor=rec
    )
    report = p.run()
    assert rec.sizes == [4, 4, 3]  # full batches, then the short rest at end of input
    assert [f.index for f in sink.frames] == list(range(11))  # in order, none dropped
    assert all(f.info["batched"] for f in sink.frames)
    assert [int(f.image[0, 0, 0]) for f in sink.frames] == [255 - i for i in range(11)]
    assert (report.frames_read, report.frames_processed, report.frames_written) == (11, 11, 11)
    assert report.dropped == 0 and report.left == 0 and report.stopped_by == "end of input"


def test_live_policy_keeps_batch_one() -> None:
    rec, sink = BatchRecorder(), ListSink()
    Pipeline(
        CountingSource(5), None, [sink], policy="live", batch_size=4, batch_processor=rec
    ).run()
    assert rec.sizes and set(rec.sizes) == {1}


def test_batch_processor_must_return_one_frame_per_frame() -> None:
    def bad(frames: list[Frame], settings: object) -> list[Frame]:
        return frames[:1]

    p = Pipeline(
        CountingSource(6), None, [ListSink()], policy="lossless", batch_size=3, batch_processor=bad
    )
    with pytest.raises(PipelineError, match="process stage failed: the batch processor returned"):
        p.run()


def test_stop_during_a_batch_stops_taking_frames() -> None:
    p: Pipeline

    def slow(frames: list[Frame], settings: object) -> list[Frame]:
        if frames[0].index == 2:
            p.stop()
        return frames

    sink = ListSink()
    p = Pipeline(
        CountingSource(40), None, [sink], policy="lossless", batch_size=2, batch_processor=slow
    )
    report = p.run()
    assert report.stopped_by == "stop requested"
    # the batch in the processor when the stop came is still written; nothing after it
    assert [f.index for f in sink.frames] == [0, 1, 2, 3]
    assert report.frames_written == 4


def test_stylize_stage_steps_the_resolution_down_on_out_of_memory(capsys) -> None:
    import torch

    from models.generator import untrained_generator
    from realtime.engine import EngineConfig, EngineOutOfMemoryError, StylizeEngine
    from realtime.pipeline import Frame, StylizeStage
    from realtime.settings import LiveSettings
    from realtime.styles import StyleEntry

    gen = untrained_generator(seed=0, with_photo_decoder=False)
    entry = StyleEntry("s", None, gen.style_code(torch.rand(1, 3, 64, 64) * 2 - 1))
    engine = StylizeEngine(gen, EngineConfig(precision="fp32"))
    real = engine._encoder

    def small_memory(x):  # a device that holds only frames up to 300 px on the shorter side
        if min(x.shape[-2:]) > 300:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return real(x)

    engine._encoder = small_memory
    frame = Frame(index=0, image=np.zeros((360, 640, 3), np.uint8), info={})
    with pytest.raises(EngineOutOfMemoryError, match="640x360"):
        StylizeStage(engine, [entry])(frame, LiveSettings())  # offline: the error stands
    live = StylizeStage(engine, [entry], step_down_on_oom=True)
    out = live(frame, LiveSettings())
    assert out.image.shape == (360, 640, 3) and engine.config.resolution == 240
    assert "out of memory at 640x360; stylizing at 240p" in capsys.readouterr().err
