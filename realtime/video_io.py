"""Video files in and out with exact timing (PyAV): ``VideoReader`` and ``VideoWriter``.

Used by ``castrt convert`` and by the live pipeline's file source and recording sink.

* ``VideoReader(path)`` decodes the first video stream (cover art skipped) with threaded
  decoding (``frames()`` may be iterated once) and yields
  ``DecodedFrame`` objects: uint8 RGB pixels (H, W, 3) with the exact ``pts`` in the stream's
  ``time_base`` and each frame's ``duration`` (the gap to the next frame; the last frame keeps
  the decoder's duration). ``reader.info`` holds size, rate, time base, frame count and
  rotation. A decode error stops iteration cleanly; ``reader.stopped`` then says where.
* ``VideoWriter(path, WriterSpec(...))`` encodes RGB frames at the pts you give it (so
  30000/1001 stays 30000/1001 and variable frame rates keep their timestamps), copies the
  audio/subtitle/data streams of ``spec.copy_from`` packet for packet where the container
  accepts them (audio otherwise re-encoded to AAC, others dropped, each with a notice), and
  keeps metadata and rotation. It writes to ``partial_path(path)`` and renames on ``close()``;
  ``abort()`` finalises a playable file at the partial path holding every frame written.
  ``write_packets`` splices already-encoded packets (resume) before the first ``write``;
  ``muxed_extradata(spec, format)`` tells whether such packets fit this encoder's headers.
* Errors: ``InputError`` (missing, not media, no video) and ``OutputError`` (exists without
  overwrite, folder missing or read-only, unusable codec), each with a one-line message.
"""

from __future__ import annotations

import contextlib
import heapq
import io
import itertools
import math
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import av
import av.error
import numpy as np

from models.errors import CastRTError, InputError

Notice = Callable[[str], None]
_REORDER_DEPTH = 4  # frames held back to put out-of-order timestamps right

# Container-level metadata that belongs to a muxer, not to the content.
_MUXER_METADATA = {"major_brand", "minor_version", "compatible_brands", "encoder"}
# Codecs whose encoders take ``crf`` and ``preset`` options.
_CRF_PRESET_CODECS = {"libx264", "libx264rgb", "libx265"}
# x264 preset names → NVENC presets (p1 fastest … p7 best); p-names pass through.
_NVENC_PRESETS = {
    "ultrafast": "p1",
    "superfast": "p1",
    "veryfast": "p2",
    "faster": "p3",
    "fast": "p3",
    "medium": "p4",
    "slow": "p5",
    "slower": "p6",
    "veryslow": "p7",
}
_CRF_CODECS = {"libvpx", "libvpx-vp9", "libsvtav1", "libaom-av1"}


class OutputError(CastRTError):
    """An output file cannot be written (exists, unwritable folder, unsupported format)."""


def _stderr_notice(msg: str) -> None:
    print(f"note: {msg}", file=sys.stderr)


def partial_path(path: Path) -> Path:
    """Where a writer for ``path`` keeps its unfinished file: ``name.partial.ext`` beside it."""
    return path.with_name(f"{path.stem}.partial{path.suffix}")


@dataclass(frozen=True)
class VideoInfo:
    """What a reader knows about its video stream before decoding it all."""

    path: Path
    width: int
    height: int
    rate: Fraction | None  # average frame rate as an exact fraction (None: unknown)
    time_base: Fraction
    frames: int  # frame count from the container header (0: unknown)
    duration_s: float | None
    rotation: int  # display rotation in degrees, counter-clockwise (PyAV convention)
    codec: str
    start_pts: int


@dataclass(frozen=True)
class DecodedFrame:
    """One decoded frame: RGB pixels and exact timing in ``time_base`` units."""

    index: int
    image: np.ndarray  # (H, W, 3) uint8 RGB
    pts: int
    duration: int
    time_base: Fraction

    @property
    def time(self) -> float:
        return float(self.pts * self.time_base)


@dataclass(frozen=True)
class StopInfo:
    """Where decoding of a damaged input stopped."""

    frame: int  # frames decoded successfully
    time_s: float  # presentation time of the last good frame's end
    reason: str

    def __str__(self) -> str:
        return f"stopped at frame {self.frame} / {self.time_s:.3f} s ({self.reason})"


_TO_ANNEXB = {"h264": "h264_mp4toannexb", "hevc": "hevc_mp4toannexb"}


def _filtered(bsf: Any, packets: Iterable[Any]) -> Iterator[Any]:
    for p in packets:
        tb = p.time_base
        for q in bsf.filter(p):
            q.time_base = q.time_base or tb
            yield q
    yield from bsf.filter(None)


def _open_input(path: Path) -> Any:
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if not path.is_file():
        raise InputError(f"input is not a file: {path}")
    try:
        return av.open(str(path), mode="r")
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise InputError(f"not a readable media file: {path} ({_short(e)})") from e


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


class VideoReader:
    """Decodes the first video stream of a file into uint8 RGB frames with exact timing."""

    def __init__(self, path: str | Path, *, threaded: bool = True) -> None:
        self.path = Path(path)
        self._container = _open_input(self.path)
        main = main_video_stream(self._container)
        if main is None:
            self._container.close()
            raise InputError(f"no video stream in {self.path}")
        self.stream = main
        if threaded:
            self.stream.thread_type = "AUTO"
        self.stopped: StopInfo | None = None
        self._frames = self._decode()
        first = next(self._frames, None)
        if first is None:
            self._container.close()
            reason = f"; {self.stopped.reason}" if self.stopped else ""
            raise InputError(f"no decodable video frame in {self.path}{reason}")
        self._first: av.VideoFrame | None = first
        s = self.stream
        rate = s.average_rate or s.guessed_rate or s.base_rate
        tb = Fraction(s.time_base) if s.time_base else Fraction(1, 1000)
        duration = float(s.duration * tb) if s.duration else None
        if duration is None and self._container.duration:
            duration = self._container.duration / av.time_base
        self.info = VideoInfo(
            path=self.path,
            width=first.width,
            height=first.height,
            rate=Fraction(rate) if rate else None,
            time_base=tb,
            frames=int(s.frames or 0),
            duration_s=duration,
            rotation=int(first.rotation or 0),
            codec=s.codec_context.name,
            start_pts=int(first.pts or 0),
        )

    def _decode(self) -> Iterator[av.VideoFrame]:
        """Raw decoded frames; a decoder or demuxer error ends the iterator and sets ``stopped``."""
        n = 0
        try:
            for packet in self._container.demux(self.stream):
                for frame in packet.decode():
                    n += 1
                    yield frame
        except av.error.FFmpegError as e:
            self.stopped = StopInfo(n, 0.0, _short(e))

    def _timed(self, first: av.VideoFrame, step: int) -> Iterator[tuple[av.VideoFrame, int]]:
        """Frames with presentation timestamps that rise with display order.

        Decoders emit frames in display order, but some containers (AVI with packed
        B-frames) attach the timestamps out of order; a small sorting buffer gives the
        k-th frame out the k-th smallest timestamp, which leaves well-formed streams as is.
        """
        frames: deque[av.VideoFrame] = deque()
        stamps: list[int] = []
        last: int | None = None
        for frame in itertools.chain([first], self._frames):
            last = _pts(frame, last, step)
            heapq.heappush(stamps, last)
            frames.append(frame)
            if len(frames) > _REORDER_DEPTH:
                yield frames.popleft(), heapq.heappop(stamps)
        while frames:
            yield frames.popleft(), heapq.heappop(stamps)

    def frames(self) -> Iterator[DecodedFrame]:
        """Yield every decodable frame once, in presentation order (a one-frame lookahead
        gives each frame its duration up to the next)."""
        if self._first is None:
            raise RuntimeError("VideoReader.frames() can be iterated only once")
        tb = self.info.time_base
        default_dur = (
            max(1, round(1 / (self.info.rate * tb))) if self.info.rate else 1
        )  # one frame interval in tb units
        timed = self._timed(self._first, default_dur)
        self._first = None
        prev, prev_pts = next(timed)
        index = 0
        last_dur = default_dur
        for frame, raw in timed:
            pts = raw if raw > prev_pts else prev_pts + 1  # duplicates: keep rising
            last_dur = pts - prev_pts
            yield self._make(index, prev, prev_pts, last_dur)
            index += 1
            prev, prev_pts = frame, pts
        dur = int(prev.duration or 0) if prev.duration else last_dur
        yield self._make(index, prev, prev_pts, max(1, dur))
        end = float((prev_pts + max(1, dur)) * tb)
        expected = self.info.frames
        if self.stopped is not None:
            self.stopped = StopInfo(index + 1, end, self.stopped.reason)
        elif expected and index + 1 < expected:
            self.stopped = StopInfo(
                index + 1, end, f"input ends early: header says {expected} frames"
            )

    def _make(self, index: int, frame: av.VideoFrame, pts: int, dur: int) -> DecodedFrame:
        image = frame.to_ndarray(format="rgb24")
        return DecodedFrame(index, image, pts, dur, self.info.time_base)

    @property
    def metadata(self) -> dict[str, str]:
        """The container's metadata tags (title, creation time, ...)."""
        return dict(self._container.metadata)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pts(frame: av.VideoFrame, prev: int | None, step: int) -> int:
    if frame.pts is not None:
        return int(frame.pts)
    if frame.dts is not None:
        return int(frame.dts)
    return 0 if prev is None else prev + step


def main_video_stream(container: Any) -> Any:
    """The first video stream that is not an attached picture (cover art); None if none."""
    for s in container.streams.video:
        if not s.disposition & av.stream.Disposition.attached_pic:
            return s
    return None


def probe_video(path: str | Path) -> VideoInfo:
    """Open, read the header and first frame, close; raises ``InputError`` if unusable."""
    with VideoReader(path) as r:
        return r.info


@dataclass(frozen=True)
class WriterSpec:
    """How a ``VideoWriter`` encodes. ``rate`` and ``time_base`` should be the source's."""

    width: int
    height: int
    time_base: Fraction
    rate: Fraction | None = None
    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None  # None: yuv420p, or yuv444p when a side is odd
    options: dict[str, str] = field(default_factory=dict)
    rotation: int = 0
    metadata: dict[str, str] = field(default_factory=dict)
    copy_from: Path | None = None  # copy this file's audio/subtitle/data streams
    container_format: str | None = None  # None: from the file extension


def choose_pix_fmt(codec: str, width: int, height: int, wanted: str | None) -> tuple[str, str]:
    """Pixel format for the encoder and a notice ('' if none).

    4:2:0 and 4:2:2 chroma need even sizes; for odd sizes we keep the exact size and switch to
    4:4:4 (yuv444p; H.264 High 4:4:4 — fewer hardware players decode it) instead of padding
    or cropping.
    """
    fmts = {f.name for f in (av.Codec(codec, "w").video_formats or [])}
    pix = wanted or ("yuv420p" if "yuv420p" in fmts or not fmts else sorted(fmts)[0])
    odd = width % 2 or height % 2
    subsampled = pix.startswith(("yuv420", "yuv422", "nv12", "nv21", "yuvj420", "yuvj422"))
    if odd and subsampled:
        for alt in ("yuv444p", "gbrp", "rgb24"):
            if not fmts or alt in fmts:
                return alt, (
                    f"{width}x{height} has an odd side; {pix} needs even sizes, so the video "
                    f"is encoded as {alt} at the exact size"
                )
        raise OutputError(
            f"codec {codec} cannot encode the odd size {width}x{height}; choose another --codec"
        )
    return pix, ""


class VideoWriter:
    """Encodes RGB frames with exact timestamps; copies the source's other streams.

    Writes into ``partial_path(path)``; ``close()`` renames it to ``path``, ``abort()`` leaves a
    playable file at the partial path. Use as a context manager: an exception aborts.
    """

    def __init__(
        self,
        path: str | Path,
        spec: WriterSpec,
        *,
        overwrite: bool = False,
        on_notice: Notice = _stderr_notice,
    ) -> None:
        self.path = Path(path)
        self.spec = spec
        self.partial = partial_path(self.path)
        self.notices: list[str] = []
        self._notify_cb = on_notice
        check_output_path(self.path, overwrite)
        self._src: Any = None
        try:
            self._out = av.open(str(self.partial), mode="w", format=spec.container_format)
        except (av.error.FFmpegError, ValueError, OSError) as e:
            raise OutputError(f"cannot write {self.path}: {_short(e)}") from e
        try:
            self._setup()
        except BaseException:
            self._out.close()
            self.partial.unlink(missing_ok=True)
            if self._src is not None:
                self._src.close()
            raise
        self.frames_written = 0
        self._last_end = 0  # end of the last written frame, in the spec's time base
        self._last_dts: int | None = None
        self._durations: dict[int, int] = {}  # pts -> duration of frames in the encoder
        self._closed = False

    # -- setup --------------------------------------------------------------------------

    def _notify(self, msg: str) -> None:
        self.notices.append(msg)
        self._notify_cb(msg)

    def _setup(self) -> None:
        spec, out = self.spec, self._out
        stream, note = _add_video_stream(out, spec)
        if note:
            self._notify(note)
        if spec.rotation:
            stream.set_display_rotation(spec.rotation)
        self.video: Any = stream
        meta = {k: v for k, v in spec.metadata.items() if k not in _MUXER_METADATA}
        if meta:
            out.metadata.update(meta)
        self._copies: dict[int, Any] = {}  # source stream index -> output stream
        self._reencode: dict[int, Any] = {}  # source audio stream index -> AAC stream
        if spec.copy_from is not None:
            self._setup_copies(spec.copy_from)

    def _setup_copies(self, src_path: Path) -> None:
        src = _open_input(src_path)
        self._src = src
        fmt = self._out.format.name
        accepted = self._out.supported_codecs
        main = main_video_stream(src)
        for s in src.streams:
            name = s.codec_context.name if s.codec_context else "unknown"
            if s.type == "video":
                if main is None or s.index != main.index:
                    self._notify(f"dropped extra video stream #{s.index} ({name})")
                continue
            if s.type in ("audio", "subtitle", "data") and _can_mux(fmt, s, accepted):
                o = self._out.add_stream_from_template(s)
                o.metadata.update(dict(s.metadata))
                self._copies[s.index] = o
            elif s.type == "audio":
                o = self._out.add_stream("aac", rate=s.codec_context.sample_rate or 48000)
                o.metadata.update(dict(s.metadata))
                self._reencode[s.index] = o
                self._notify(
                    f"audio stream #{s.index} ({name}) cannot go into {fmt} as is; re-encoded to AAC"
                )
            else:
                self._notify(f"dropped {s.type} stream #{s.index} ({name}): {fmt} cannot hold it")
        wanted = [src.streams[i] for i in (*self._copies, *self._reencode)]
        self._src_packets = src.demux(*wanted) if wanted else iter(())
        self._pending: Any = None

    # -- writing ------------------------------------------------------------------------

    def write(self, image: np.ndarray, pts: int, duration: int | None = None) -> None:
        """Encode one (H, W, 3) uint8 RGB frame at ``pts`` (in ``spec.time_base`` units);
        ``duration`` (same units) sets how long it shows, which matters for the last frame."""
        h, w = image.shape[:2]
        if (w, h) != (self.spec.width, self.spec.height):
            raise ValueError(
                f"frame is {w}x{h}, writer expects {self.spec.width}x{self.spec.height}"
            )
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        frame.pts = int(pts)
        frame.time_base = self.spec.time_base
        if duration:
            frame.duration = int(duration)
            self._durations[int(pts)] = int(duration)
        self._pump(float(pts * self.spec.time_base))
        self._encode(frame)
        self.frames_written += 1
        self._last_end = int(pts) + int(duration or 0)

    @property
    def format_name(self) -> str:
        """The output muxer's name (mp4, matroska, ...)."""
        return str(self._out.format.name)

    @property
    def end_pts(self) -> int:
        """End (pts + duration) of the last frame written, in ``spec.time_base`` units."""
        return self._last_end

    def write_packets(self, packets: Iterable[Any], source: Any = None) -> int:
        """Mux already-encoded video packets (a resumed conversion's finished frames) before
        any ``write``; returns how many were muxed. They must come from this writer's codec
        settings (compare ``muxed_extradata``). ``source`` is the packets' stream: H.264/HEVC
        packets stored length-prefixed (MP4, MKV) are turned back into the Annex B form the
        encoder emits, which the muxer expects; the coded pictures are not changed."""
        if self.frames_written:
            raise RuntimeError("write_packets must come before the first write")
        self._out.start_encoding()
        bsf: Any = None
        if source is not None:
            name = source.codec_context.name
            extradata = bytes(source.codec_context.extradata or b"")
            if name in _TO_ANNEXB and extradata[:1] == b"\x01":
                from av.bitstream import BitStreamFilterContext

                bsf = BitStreamFilterContext(_TO_ANNEXB[name], source)
        if bsf is not None:
            packets = _filtered(bsf, packets)
        n = 0
        last_end = Fraction(0)
        for packet in packets:
            if packet.dts is None or packet.pts is None or packet.size == 0:
                continue
            t = Fraction(packet.pts) * packet.time_base
            last_end = max(last_end, t + Fraction(packet.duration or 0) * packet.time_base)
            self._pump(float(t))
            packet.stream = self.video
            self._mux_video(packet)
            n += 1
        self.frames_written += n
        self._last_end = math.ceil(last_end / self.spec.time_base)
        return n

    def _encode(self, frame: av.VideoFrame | None) -> None:
        for packet in self.video.encode(frame):
            self._mux_video(packet)

    def _mux_video(self, packet: Any) -> None:
        """Mux one video packet in the stream's time base, with its frame's duration and a
        strictly rising dts (an encoder restarted on resume may start below the copied part)."""
        if packet.pts is not None and not packet.duration:
            dur = self._durations.pop(int(packet.pts), 0)
            if dur:
                packet.duration = dur
        tb_out = self.video.time_base
        tb_in = packet.time_base
        if tb_in is not None and tb_out is not None and tb_in != tb_out:
            for name in ("pts", "dts", "duration"):
                v = getattr(packet, name)
                if v is not None:
                    setattr(packet, name, round(Fraction(v) * tb_in / tb_out))
            packet.time_base = tb_out
        if self._last_dts is not None and packet.dts is not None and packet.dts <= self._last_dts:
            packet.dts = self._last_dts + 1
        if packet.dts is not None:
            self._last_dts = packet.dts
        self._out.mux(packet)

    def _pump(self, until_s: float | None) -> None:
        """Mux the copied streams' packets up to ``until_s`` seconds (None: all)."""
        if self._src is None:
            return
        while True:
            p = self._pending
            if p is None:
                try:
                    p = next(self._src_packets)
                except StopIteration:
                    return
                except av.error.FFmpegError as e:
                    self._notify(f"stopped copying other streams: {_short(e)}")
                    self._src_packets = iter(())
                    return
                if p.dts is None:
                    continue
            t = float(p.pts * p.time_base) if p.pts is not None else float(p.dts * p.time_base)
            if until_s is not None and t > until_s:
                self._pending = p
                return
            self._pending = None
            idx = p.stream.index
            if idx in self._copies:
                p.stream = self._copies[idx]
                self._out.mux(p)
            elif idx in self._reencode:
                try:
                    for fr in p.decode():
                        fr.pts = None
                        for q in self._reencode[idx].encode(fr):
                            self._out.mux(q)
                except av.error.FFmpegError as e:
                    self._notify(f"skipped an undecodable audio packet: {_short(e)}")

    def _finish(self, until_s: float | None) -> None:
        self._encode(None)
        self._pump(until_s)
        for s in self._reencode.values():
            for q in s.encode(None):
                self._out.mux(q)
        self._out.close()
        if self._src is not None:
            self._src.close()
        self._closed = True

    def close(self) -> Path:
        """Flush everything, copy the rest of the other streams and move the file into place."""
        if self._closed:
            return self.path
        if self.frames_written == 0:
            self._discard()
            raise OutputError(f"no frame was written; {self.path} not created")
        self._finish(None)
        os.replace(self.partial, self.path)
        return self.path

    def abort(self) -> Path | None:
        """Finalise a playable file with every frame written so far at ``self.partial``
        (other streams up to the last frame's end); None (and no file) if nothing was written."""
        if self._closed:
            return self.partial if self.partial.exists() else None
        if self.frames_written == 0:
            self._discard()
            return None
        self._finish(float(self._last_end * self.spec.time_base))
        return self.partial

    def _discard(self) -> None:
        with contextlib.suppress(av.error.FFmpegError):
            self._out.close()
        if self._src is not None:
            self._src.close()
        self._closed = True
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if et is None:
            self.close()
        else:
            self.abort()


def _add_video_stream(out: Any, spec: WriterSpec) -> tuple[Any, str]:
    """Add and configure the encoder stream for ``spec``; returns it and a notice ('' if none)."""
    stream: Any
    try:
        stream = out.add_stream(spec.codec, rate=spec.rate) if spec.rate else None
        if stream is None:
            stream = out.add_stream(spec.codec)
    except (av.error.FFmpegError, ValueError) as e:
        raise OutputError(f"cannot use video codec {spec.codec}: {_short(e)}") from e
    pix, note = choose_pix_fmt(spec.codec, spec.width, spec.height, spec.pix_fmt)
    stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, pix
    stream.time_base = spec.time_base
    stream.codec_context.time_base = spec.time_base
    stream.codec_context.options = _encoder_options(spec)
    return stream, note


def _encoder_options(spec: WriterSpec) -> dict[str, str]:
    opts = dict(spec.options)
    if spec.codec in _CRF_PRESET_CODECS | _CRF_CODECS and spec.crf is not None:
        opts.setdefault("crf", str(spec.crf))
    if spec.codec in _CRF_PRESET_CODECS and spec.preset:
        opts.setdefault("preset", spec.preset)
    if spec.codec.endswith("_nvenc"):  # NVIDIA: constant quality ``cq`` plays the role of crf
        if spec.crf is not None:
            opts.setdefault("rc", "vbr")
            opts.setdefault("cq", str(spec.crf))
        if spec.preset:
            opts.setdefault("preset", _NVENC_PRESETS.get(spec.preset, spec.preset))
    return opts


def muxed_extradata(spec: WriterSpec, container_format: str) -> bytes:
    """The codec header bytes a ``container_format`` file written with ``spec`` stores (one
    black frame encoded in memory). Equal headers mean packets of such a file can be spliced
    into a new one (``VideoWriter.write_packets``)."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=container_format) as out:
        stream, _ = _add_video_stream(out, spec)
        frame = av.VideoFrame.from_ndarray(
            np.zeros((spec.height, spec.width, 3), np.uint8), format="rgb24"
        )
        frame.pts = 0
        frame.time_base = spec.time_base
        for p in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(p)
    buf.seek(0)
    with av.open(buf, mode="r") as c:
        return bytes(c.streams.video[0].codec_context.extradata or b"")


def check_output_path(path: Path, overwrite: bool) -> None:
    """Raise ``OutputError`` unless ``path`` may be (over)written."""
    if path.is_dir():
        raise OutputError(f"output is a folder: {path}")
    if path.exists() and not overwrite:
        raise OutputError(f"output exists: {path} (use --overwrite to replace it)")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"output folder does not exist: {parent}")
    if not os.access(parent, os.W_OK):
        raise OutputError(f"output folder is not writable: {parent}")


def _can_mux(fmt: str, stream: Any, accepted: set[str]) -> bool:
    """Whether ``fmt`` accepts ``stream`` copied as is (tried on an in-memory muxer)."""
    name = stream.codec_context.name if stream.codec_context else None
    if name is None or name not in accepted:
        return False
    try:
        with av.open(io.BytesIO(), mode="w", format=fmt) as probe:
            probe.add_stream_from_template(stream)
            probe.start_encoding()
    except (av.error.FFmpegError, ValueError):
        return False
    return True
