"""Helpers for video tests: small clips made in the test (CFR, VFR, odd sizes, audio)."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


def clip_image(i: int, w: int, h: int) -> np.ndarray:
    """A moving gradient with a frame-number stripe: uint8 RGB (h, w, 3)."""
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack(
        [(x * 4 + i * 9) % 256, (y * 4 + i * 5) % 256, ((x + y) * 2 + i * 17) % 256], axis=-1
    ).astype(np.uint8)
    img[: max(1, h // 8), : (i * 7) % w + 1] = 255
    return img


def make_clip(
    path: Path,
    *,
    size: tuple[int, int] = (64, 48),
    pts: Sequence[int] | None = None,
    frames: int = 10,
    time_base: Fraction = Fraction(1, 25),
    rate: Fraction = Fraction(25),
    codec: str = "libx264",
    audio: str | None = None,
    last_duration: int | None = None,
    rotation: int = 0,
    metadata: dict[str, str] | None = None,
    subtitles: bool = False,
) -> Path:
    """Write a test clip; ``pts`` (in ``time_base``) defaults to 0, 1, 2, ... frames."""
    w, h = size
    stamps = list(pts) if pts is not None else list(range(frames))
    with av.open(str(path), "w") as out:
        if metadata:
            out.metadata.update(metadata)
        vs = out.add_stream(codec, rate=rate)
        vs.width, vs.height = w, h
        vs.pix_fmt = "yuv444p" if (w % 2 or h % 2) else "yuv420p"
        vs.time_base = time_base
        vs.codec_context.time_base = time_base
        if codec == "libx264":
            vs.codec_context.options = {"preset": "ultrafast"}
        if rotation:
            vs.set_display_rotation(rotation)
        aus = None
        if audio:
            aus = out.add_stream(audio, rate=8000 if audio == "pcm_u8" else 44100)
            aus.layout = "mono"
        subs = out.add_mux_stream("subrip") if subtitles else None
        end_s = float((stamps[-1] + (last_duration or 1)) * time_base)
        if subs is not None:
            out.start_encoding()
            for k, text in enumerate((b"first line", b"second line")):
                sp = av.Packet(text)
                sp.stream = subs
                sp.time_base = Fraction(1, 1000)
                sp.pts = sp.dts = k * 200
                sp.duration = 150
                out.mux(sp)
        if aus is not None:
            sr = aus.codec_context.sample_rate
            n = int(end_s * sr)
            t = np.arange(n) / sr
            wave = 0.3 * np.sin(2 * np.pi * 440 * t)
            fmt = "u8" if audio == "pcm_u8" else "fltp"
            data = ((wave + 1) * 127.5).astype(np.uint8) if fmt == "u8" else wave.astype(np.float32)
            chunk = 1024
            for k in range(0, n, chunk):
                fr = av.AudioFrame.from_ndarray(
                    data[None, k : k + chunk], format=fmt, layout="mono"
                )
                fr.sample_rate = sr
                fr.pts = k
                fr.time_base = Fraction(1, sr)
                for p in aus.encode(fr):
                    out.mux(p)
        for i, p_ts in enumerate(stamps):
            fr = av.VideoFrame.from_ndarray(clip_image(i, w, h), format="rgb24")
            fr.pts = p_ts
            fr.time_base = time_base
            if i == len(stamps) - 1 and last_duration:
                fr.duration = last_duration
            for p in vs.encode(fr):
                _mux_video(out, p, stamps[-1], last_duration)
        for p in vs.encode(None):
            _mux_video(out, p, stamps[-1], last_duration)
        if aus is not None:
            for p in aus.encode(None):
                out.mux(p)
    return path


def frame_times(path: Path) -> list[Fraction]:
    """Presentation times (seconds, exact) of every video frame, by a plain PyAV decode."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return sorted(Fraction(f.pts) * s.time_base for f in c.decode(s))


def packets_bytes(path: Path, kind: str = "audio") -> list[list[bytes]]:
    """Payload bytes of every packet of every stream of ``kind``, per stream."""
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        out: dict[int, list[bytes]] = {s.index: [] for s in streams}
        if streams:
            for p in c.demux(*streams):
                if p.dts is not None and p.size:
                    out[p.stream.index].append(bytes(p))
        return list(out.values())


def _mux_video(out: av.container.OutputContainer, p: av.Packet, last: int, dur: int | None) -> None:
    if dur and p.pts == last:
        p.duration = dur  # the encoder leaves packet durations at 0
    out.mux(p)
