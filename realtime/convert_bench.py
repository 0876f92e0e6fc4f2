"""Conversion throughput against the engine's own throughput on the same frames.

    python -m realtime.convert_bench [--video PATH] [--frames 32] [--resolution 180 ...]
        [--batch 4] [--rounds 2] [--preset medium] [--device cpu] [--precision fp32] [--md FILE]

The first ``--frames`` frames of the video are cut into a temporary clip (not timed). Then, in
alternating rounds so that machine load hits both alike:

* **engine**: ``engine.process_batch`` over the already-decoded frames, ``--batch`` at a time
  (no decoding, no encoding, no threads);
* **convert**: ``Converter.convert_video`` on the clip: threaded decode → the same engine →
  encode (libx264 CRF 18, ``--preset``), audio copy, wall clock from open to the renamed file.

The goal (issue 5) is convert fps ≥ 0.9 × engine fps: decode and encode hidden behind the model.
Each row reports the median over rounds of each and the median of the per-round ratios, and
the share of the conversion's wall time spent in the stylize stage (1.0 means decoding and
encoding were completely hidden; on a machine shared with other jobs this share is steadier
than the fps ratio, which also carries the load changing between rounds).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from models.generator import untrained_generator
from models.style_code import StyleCode
from realtime.commands.convert import Converter, ConvertOptions
from realtime.video_io import VideoReader, VideoWriter, WriterSpec

DEFAULT_VIDEO = Path(__file__).resolve().parents[1].parent / "shared/data/video/plane_pan_audio.mp4"


@dataclass
class Row:
    video: str
    frames: int
    size: str
    resolution: int
    batch: int
    engine_fps: float
    convert_fps: float
    ratio: float
    decode_s: float
    stylize_s: float
    encode_s: float
    stylize_share: float  # stylize stage time / conversion wall time (1.0: I/O fully hidden)

    def markdown(self) -> str:
        return (
            f"| {self.video} | {self.frames} | {self.size} | {self.resolution or 'native'} | "
            f"{self.batch} | {self.engine_fps:.2f} | {self.convert_fps:.2f} | "
            f"**{self.ratio:.2f}** | {self.decode_s:.2f} / {self.stylize_s:.2f} / "
            f"{self.encode_s:.2f} | {self.stylize_share:.3f} |"
        )


HEADER = (
    "| video | frames | source size | processing shorter side | batch | engine fps | "
    "convert fps | convert / engine | convert stage s (decode / stylize / encode) | "
    "stylize / convert wall |\n"
    "| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | --- | ---: |"
)


def cut_clip(src: Path, frames: int, dst: Path) -> list[np.ndarray]:
    """Write the first ``frames`` frames of ``src`` (and its audio up to there) to ``dst``
    (fast x264); return the decoded frames of ``dst``."""
    with VideoReader(src) as r:
        i = r.info
        spec = WriterSpec(
            i.width, i.height, i.time_base, i.rate, crf=12, preset="ultrafast", copy_from=src
        )
        w = VideoWriter(dst, spec, on_notice=lambda m: None)
        for f in r.frames():
            w.write(f.image, f.pts, f.duration)
            if w.frames_written == frames:
                break
    part = w.abort()  # finalises the first frames with the audio up to their end
    assert part is not None
    os.replace(part, dst)
    with VideoReader(dst) as r:
        return [f.image for f in r.frames()]


def bench_one(
    video: Path, frames: int, resolution: int, batch: int, rounds: int, args: argparse.Namespace
) -> Row:
    gen = untrained_generator(seed=0, with_photo_decoder=False)
    g = torch.Generator().manual_seed(0)
    code = StyleCode(
        torch.rand(1, 512, 1, 1, generator=g), torch.rand(1, 512, 1, 1, generator=g) + 0.5
    )
    opts = ConvertOptions(
        resolution=resolution,
        batch=batch,
        preset=args.preset,
        precision=args.precision,
        progress=False,
        overwrite=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "clip.mp4"
        images = cut_clip(video, frames, clip)
        conv = Converter(gen, code, opts, device=args.device)
        engine = conv.engine
        engine.process_batch(images[:batch], code)  # warm-up
        e_fps, c_fps, ratios, stages, shares = [], [], [], [], []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for k in range(0, len(images), batch):
                engine.process_batch(images[k : k + batch], code)
            e = len(images) / (time.perf_counter() - t0)
            t0 = time.perf_counter()
            res = conv.convert_video(clip, Path(tmp) / "out.mp4")
            wall = time.perf_counter() - t0
            c = res.frames / wall
            shares.append(res.times.stylize / wall)
            e_fps.append(e)
            c_fps.append(c)
            ratios.append(c / e)
            stages.append(res.times)
    return Row(
        video=video.name,
        frames=len(images),
        size=f"{images[0].shape[1]}x{images[0].shape[0]}",
        resolution=resolution,
        batch=batch,
        engine_fps=statistics.median(e_fps),
        convert_fps=statistics.median(c_fps),
        ratio=statistics.median(ratios),
        decode_s=statistics.median(s.decode for s in stages),
        stylize_s=statistics.median(s.stylize for s in stages),
        encode_s=statistics.median(s.encode for s in stages),
        stylize_share=statistics.median(shares),
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--video", type=Path, action="append", help=f"default {DEFAULT_VIDEO.name}")
    p.add_argument("--frames", type=int, default=32)
    p.add_argument("--resolution", type=int, nargs="+", default=[180])
    p.add_argument("--batch", type=int, nargs="+", default=[4])
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--preset", default="medium")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", default="fp32")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--md", type=Path, help="append the table to this Markdown file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    videos = args.video or [DEFAULT_VIDEO]
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch "
        f"threads, device {args.device}, precision {args.precision}, x264 preset {args.preset}, "
        f"untrained weights, {args.rounds} alternating rounds; "
        f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        HEADER,
    ]
    print("\n".join(lines), flush=True)
    for v in videos:
        for r in args.resolution:
            for b in args.batch:
                row = bench_one(v, args.frames, r, b, args.rounds, args)
                lines.append(row.markdown())
                print(lines[-1], flush=True)
    if args.md:
        with args.md.open("a") as f:
            f.write("\n".join(lines) + "\n\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
