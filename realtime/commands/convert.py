"""``castrt convert``: stylize video files, images and folders offline, losing nothing.

A video runs through the shared ``realtime.pipeline.Pipeline`` with the *lossless* policy:
``FileSource`` (threaded PyAV decoding, exact integer timestamps in ``Frame.info``) →
``ConvertStage`` (the engine, ``--batch`` frames per call) → ``VideoFileSink`` (PyAV encoding
at those timestamps) and a ``ProgressSink``. A slow stage slows the others; no frame is ever
dropped. Timing, size, audio and metadata are kept (see ``realtime.video_io``). This module
only orchestrates: paths, resume state, signals and the summary.

Never losing work: the output is written as ``NAME.partial.EXT`` and renamed when complete.
Ctrl-C or SIGTERM finalises that partial file (playable, every frame done so far) and writes
``NAME.partial.json`` beside it; ``--resume`` then remuxes the finished frames' packets (no
re-encode, no re-stylization) and continues encoding from the next frame.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from types import FrameType
from typing import Any

import av
import av.error
import numpy as np

from models.errors import CastRTError, InputError
from models.generator import CASTGenerator
from models.style_code import StyleCode
from realtime.commands.common import (
    add_model_args,
    add_style_args,
    build_generator,
    configure_threads,
    parse_weights,
    resolve_device,
    style_code_from_args,
)
from realtime.commands.stylize import DEFAULT_MAX_SIDE, StillOptions, stylize_rgb
from realtime.engine import COMPILE_MODES, PRECISIONS, EngineConfig, StylizeEngine
from realtime.images import is_image_path, read_image, write_image
from realtime.pipeline import Frame, Pipeline, PipelineError, PipelineReport, Sink
from realtime.settings import LiveSettings
from realtime.sinks import ProgressSink, VideoFileSink
from realtime.sources import FileSource
from realtime.stats import PipelineStats
from realtime.temporal import STRATEGIES, make_strategy
from realtime.video_io import (
    DecodedFrame,
    OutputError,
    VideoReader,
    VideoWriter,
    WriterSpec,
    check_output_path,
    muxed_extradata,
    partial_path,
)

STATE_VERSION = 1
EXIT_INTERRUPTED = 130


class Interrupted(CastRTError):
    """The user stopped a conversion; the finished part is kept."""


@dataclass(frozen=True)
class ConvertOptions:
    """Everything that decides a conversion's output (parsed once from the command line)."""

    alpha: float = 1.0
    preserve_color: bool = False
    resolution: int = 0
    precision: str = "fp32"
    compile: str = "auto"
    temporal: str = "off"
    batch: int = 4
    codec: str = "libx264"
    crf: int | None = 18
    preset: str | None = "medium"
    pix_fmt: str | None = None
    container: str = "mp4"
    max_side: int = DEFAULT_MAX_SIDE
    overwrite: bool = False
    resume: bool = False
    progress: bool = True


@dataclass
class StageTimes:
    """Seconds spent in each stage (decode and encode run beside stylize)."""

    decode: float = 0.0
    stylize: float = 0.0
    encode: float = 0.0


@dataclass
class VideoResult:
    """What one video conversion did."""

    src: Path
    dst: Path
    frames: int
    resumed_frames: int
    video_seconds: float
    wall: float
    times: StageTimes
    width: int
    height: int
    stopped: str | None = None
    notices: list[str] = field(default_factory=list)
    report: PipelineReport | None = None  # the lossless pipeline's own account of the run

    def summary(self) -> str:
        new = self.frames - self.resumed_frames
        fps = new / self.wall if self.wall > 0 else 0.0
        resumed = (
            f", {self.resumed_frames} kept from the interrupted run" if self.resumed_frames else ""
        )
        t = self.times
        return (
            f"{self.src} -> {self.dst}: {self.frames} frames{resumed}, "
            f"{self.video_seconds:.2f} s of video, {self.width}x{self.height}; "
            f"{new} frames in {self.wall:.2f} s = {fps:.2f} fps; "
            f"stage time decode {t.decode:.2f} s, stylize {t.stylize:.2f} s, "
            f"encode {t.encode:.2f} s (decode and encode run beside stylize)"
            + (
                f"; pipeline: {self.report.frames_written} written, left {self.report.left}, "
                f"stopped by {self.report.stopped_by}"
                if self.report
                else ""
            )
        )


# --- resume state ------------------------------------------------------------------------


def state_path(dst: Path) -> Path:
    """The sidecar describing ``partial_path(dst)``: ``NAME.partial.json``."""
    return dst.with_name(f"{dst.stem}.partial.json")


def previous_path(dst: Path) -> Path:
    """Where a resumed run keeps the interrupted part while it writes the new partial file."""
    return dst.with_name(f"{dst.stem}.partial.prev{dst.suffix}")


def input_fingerprint(src: Path) -> dict[str, Any]:
    st = src.stat()
    return {"input": str(src.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def write_state(dst: Path, state: dict[str, Any]) -> None:
    tmp = state_path(dst).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, state_path(dst))


def read_state(dst: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(state_path(dst).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("version") == STATE_VERSION else None


def remove_scratch(dst: Path) -> None:
    for p in (state_path(dst), previous_path(dst)):
        p.unlink(missing_ok=True)


# --- the stylizer shared by all inputs -----------------------------------------------------


class Converter:
    """Converts videos and images with one model, one style and one set of options."""

    def __init__(
        self,
        gen: CASTGenerator,
        code: StyleCode,
        opts: ConvertOptions,
        device: str = "cpu",
        settings_id: str = "",
    ) -> None:
        self.gen = gen
        self.code = code
        self.opts = opts
        self.engine = StylizeEngine(
            gen,
            EngineConfig(
                device=device,
                resolution=opts.resolution,
                precision=opts.precision,
                compile=opts.compile,
            ),
        )
        self.settings_id = settings_id or settings_key(opts, {})
        self.stop = threading.Event()

    # -- images ------------------------------------------------------------------------

    def convert_image(self, src: Path, dst: Path) -> None:
        """Stylize one image exactly as ``castrt stylize`` does."""
        check_output_path(dst, self.opts.overwrite)
        rgb = read_image(src)
        still = StillOptions(self.opts.alpha, self.opts.preserve_color, self.opts.max_side)
        write_image(dst, stylize_rgb(self.gen, rgb, self.code, still))

    # -- videos ------------------------------------------------------------------------

    def convert_video(self, src: Path, dst: Path) -> VideoResult:
        """Convert one video file to ``dst`` (see the module docstring for the guarantees)."""
        if src.exists() and dst.exists() and src.resolve() == dst.resolve():
            raise OutputError(f"output is the input: {dst}")
        reader = VideoReader(src)
        try:
            return self._convert_open(reader, src, dst)
        finally:
            reader.close()

    def _prepare_resume(self, src: Path, dst: Path) -> tuple[Path | None, int]:
        """(file holding the finished frames or None, their count) for ``--resume``;
        refuses a stale partial file without ``--resume`` so it is never silently lost."""
        part, prev = partial_path(dst), previous_path(dst)
        state = read_state(dst)
        have = prev if prev.exists() else part if part.exists() else None
        if not self.opts.resume:
            if have is not None and not self.opts.overwrite:
                raise OutputError(
                    f"an interrupted conversion of {src} is in {have}; add --resume to finish "
                    "it or --overwrite to start again"
                )
            part.unlink(missing_ok=True)
            remove_scratch(dst)
            return None, 0
        if have is None or state is None:
            if have is not None:
                print(f"note: {have} has no usable state file; starting again", file=sys.stderr)
            part.unlink(missing_ok=True)
            remove_scratch(dst)
            return None, 0
        fp = input_fingerprint(src)
        if state.get("fingerprint") != fp or state.get("settings") != self.settings_id:
            raise OutputError(
                f"cannot resume {dst}: the input or the settings differ from the interrupted "
                "run (use --overwrite to start again)"
            )
        if have == part:
            os.replace(part, prev)
        else:
            part.unlink(missing_ok=True)  # a crashed resume's unfinished file
        return prev, int(state.get("frames", 0))

    def _convert_open(self, reader: VideoReader, src: Path, dst: Path) -> VideoResult:
        opts = self.opts
        info = reader.info
        check_output_path(dst, opts.overwrite)
        prev, n_prev = self._prepare_resume(src, dst)
        spec = WriterSpec(
            width=info.width,
            height=info.height,
            time_base=info.time_base,
            rate=info.rate,
            codec=opts.codec,
            crf=opts.crf,
            preset=opts.preset,
            pix_fmt=opts.pix_fmt,
            rotation=info.rotation,
            metadata=reader.metadata,
            copy_from=src,
        )
        t_start = time.perf_counter()
        # existence was checked above; a resumed run splices the finished part's packets
        writer = VideoWriter(dst, spec, overwrite=True)
        kept_pts: list[Fraction] = []
        try:
            if prev is not None:
                kept_pts = self._copy_finished(writer, prev, n_prev)
        except BaseException:
            writer.abort()
            if prev is not None and not partial_path(dst).exists():
                os.replace(prev, partial_path(dst))
            raise
        if kept_pts and opts.temporal != "off":
            print(
                f"note: --temporal {opts.temporal} restarts its smoothing at the resumed frame",
                file=sys.stderr,
            )
        stats = PipelineStats()
        sinks: list[Sink] = [VideoFileSink(writer)]
        if opts.progress:
            sinks.append(ProgressSink(info.frames, src.name, initial=len(kept_pts)))
        batch = opts.batch if opts.temporal == "off" else 1
        pipeline = Pipeline(
            FileSource(src, reader=reader, skip=_resume_check(dst, kept_pts)),
            None,
            sinks,
            policy="lossless",
            stats=stats,
            queue_size=max(2, 2 * batch),
            batch_size=batch,
            batch_processor=ConvertStage(self.engine, self.code, opts, info.width, info.height),
        )
        errors: list[BaseException] = []
        report: PipelineReport | None = None
        try:
            with _signals_stop(self.stop):
                report = pipeline.run(stop_event=self.stop)
        except KeyboardInterrupt:
            pass
        except PipelineError as e:
            report = e.report
            cause = e.__cause__
            errors.append(cause if isinstance(cause, CastRTError) else e)
        except BaseException as e:
            errors.append(e)
        complete = report is not None and report.stopped_by == "end of input"
        if complete:
            self.stop = threading.Event()  # the pipeline sets its stop event when it shuts down
        totals = stats.stage_totals_s()
        times = StageTimes(
            decode=totals.get("capture", 0.0),
            stylize=totals.get("process", 0.0),
            encode=totals.get(f"sink:{VideoFileSink.name}", 0.0),
        )
        interrupted = not complete
        wall = time.perf_counter() - t_start
        frames = writer.frames_written
        if errors or interrupted:
            try:
                where = writer.abort()
            except Exception as e:
                where = None
                print(f"error: could not finalise {writer.partial}: {e}", file=sys.stderr)
            if where is not None:
                write_state(
                    dst,
                    {
                        "version": STATE_VERSION,
                        "fingerprint": input_fingerprint(src),
                        "settings": self.settings_id,
                        "frames": frames,
                    },
                )
            previous_path(dst).unlink(missing_ok=True)
            if errors:
                raise errors[0]
            total = f" of {info.frames}" if info.frames else ""
            kept = f"; {frames}{total} frames are in {where} (playable)" if where else ""
            raise Interrupted(
                f"interrupted{kept}; run the same command with --resume to finish {dst}"
            )
        writer.close()
        remove_scratch(dst)
        duration = float(Fraction(writer.end_pts) * info.time_base) - float(
            Fraction(info.start_pts) * info.time_base
        )
        return VideoResult(
            src=src,
            dst=dst,
            frames=frames,
            resumed_frames=len(kept_pts),
            video_seconds=duration,
            wall=wall,
            times=times,
            width=info.width,
            height=info.height,
            stopped=str(reader.stopped) if reader.stopped else None,
            notices=list(writer.notices),
            report=report,
        )

    def _copy_finished(self, writer: VideoWriter, prev: Path, expected: int) -> list[Fraction]:
        """Mux the interrupted run's video packets into ``writer``; their pts in seconds."""
        try:
            with av.open(str(prev)) as c:
                vs = c.streams.video[0]
                extradata = bytes(vs.codec_context.extradata or b"")
                if extradata != muxed_extradata(writer.spec, writer.format_name):
                    raise OutputError(
                        f"cannot resume from {prev}: it was encoded with other codec headers "
                        "(another codec, size or encoder version); use --overwrite to start again"
                    )
                packets = [p for p in c.demux(vs) if p.dts is not None and p.pts is not None]
                pts = sorted(Fraction(p.pts or 0) * p.time_base for p in packets)
                n = writer.write_packets(packets, vs)
        except (av.error.FFmpegError, IndexError) as e:
            raise OutputError(
                f"cannot resume from {prev}: {e} (use --overwrite to start again)"
            ) from e
        if n != expected:
            print(
                f"note: the state file says {expected} finished frames, {prev} holds {n}; "
                f"resuming after {n}",
                file=sys.stderr,
            )
        print(f"resuming {writer.path} after {n} finished frames", file=sys.stderr)
        return pts


def _resume_check(dst: Path, kept: list[Fraction]) -> Callable[[DecodedFrame], bool] | None:
    """The source's ``skip`` for a resumed run: frames the finished part already holds are
    skipped after checking that the input has them at the same times."""
    if not kept:
        return None

    def skip(f: DecodedFrame) -> bool:
        if f.index >= len(kept):
            return False
        if abs(Fraction(f.pts) * f.time_base - kept[f.index]) > Fraction(1, 1000):
            raise OutputError(
                f"cannot resume {dst}: frame {f.index} of the finished part is at "
                f"{float(kept[f.index]):.3f} s, the input has it at {f.time:.3f} s "
                "(use --overwrite to start again)"
            )
        return True

    return skip


class ConvertStage:
    """The pipeline's batch processor for a conversion: the engine on a batch of frames
    (temporal off) or frame by frame through the temporal strategy; a frame of another size
    than the first is resized to it (with one note), as the encoder needs one size."""

    def __init__(
        self, engine: StylizeEngine, code: StyleCode, opts: ConvertOptions, width: int, height: int
    ) -> None:
        self.engine = engine
        self.code = code
        self.opts = opts
        self.size = (width, height)
        self.strategy = make_strategy(opts.temporal)
        self._size_noted = False

    def _sized(self, f: Frame) -> Frame:
        h, w = f.image.shape[:2]
        if (w, h) == self.size:
            return f
        if not self._size_noted:
            print(
                f"note: frame {f.index} is {w}x{h}; frames are resized to the first frame's "
                f"{self.size[0]}x{self.size[1]}",
                file=sys.stderr,
            )
            self._size_noted = True
        import cv2

        return f.with_image(cv2.resize(f.image, self.size, interpolation=cv2.INTER_AREA))

    def __call__(self, frames: list[Frame], settings: LiveSettings) -> list[Frame]:
        opts = self.opts
        frames = [self._sized(f) for f in frames]
        if opts.temporal == "off":
            images = self.engine.process_batch(
                [f.image for f in frames], self.code, opts.alpha, opts.preserve_color
            )
        else:
            images = [
                self.strategy.step(f.image, self.engine, self.code, opts.alpha) for f in frames
            ]
        return [f.with_image(img) for f, img in zip(frames, images, strict=True)]


class _signals_stop:
    """While active, SIGTERM and a first Ctrl-C set ``stop`` (the loop finishes its batch);
    a second Ctrl-C raises KeyboardInterrupt at once."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.stop.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.stop.set()

    def __enter__(self) -> _signals_stop:
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                self.old[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for s, h in self.old.items():
            signal.signal(s, h)


def settings_key(opts: ConvertOptions, model: dict[str, Any]) -> str:
    """A hash of everything that changes the encoded frames (resume refuses a mismatch)."""
    keep = asdict(opts)
    for k in ("overwrite", "resume", "progress", "max_side", "container"):
        keep.pop(k, None)
    blob = json.dumps({"opts": keep, "model": model}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# --- planning: which file goes where --------------------------------------------------------

VIDEO_SUFFIXES = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".wmv",
        ".flv",
        ".mpg",
        ".mpeg",
        ".ts",
        ".mts",
        ".m2ts",
        ".3gp",
        ".ogv",
        ".mxf",
        ".y4m",
        ".gifv",
    }
)


@dataclass(frozen=True)
class Job:
    """One input file and where its result goes."""

    src: Path
    dst: Path
    kind: str  # "video" or "image"


def _is_scratch(p: Path) -> bool:
    return ".partial." in p.name or p.name.endswith(".partial.json")


def plan_jobs(
    inputs: list[Path], output: Path, container: str
) -> tuple[list[Job], list[tuple[Path, str]]]:
    """Jobs for the inputs and the (path, reason) of everything skipped.

    One file input and an output that is not a folder: that file. Otherwise ``output`` is a
    folder; folders are walked recursively and their layout kept; videos become
    ``<stem>.<container>``, images ``<stem>.png``.
    """
    for p in inputs:
        if not p.exists():
            raise InputError(f"input not found: {p}")
    single = (
        len(inputs) == 1
        and inputs[0].is_file()
        and not output.is_dir()
        and not str(output).endswith(("/", os.sep))
    )
    if single:
        src = inputs[0]
        if is_image_path(src):
            return [Job(src, output, "image")], []
        if not output.suffix:
            raise OutputError(f"output needs a video suffix such as .mp4 or .mkv: {output}")
        return [Job(src, output, "video")], []
    files: list[tuple[Path, Path]] = []  # (file, path relative to the output folder)
    skipped: list[tuple[Path, str]] = []
    for p in inputs:
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file():
                    files.append((f, f.relative_to(p)))
        else:
            files.append((p, Path(p.name)))
    jobs: list[Job] = []
    taken: set[Path] = set()
    for f, rel in files:
        if f.name.startswith(".") or _is_scratch(f):
            skipped.append((f, "hidden or unfinished file"))
            continue
        if output.resolve() in f.resolve().parents:
            skipped.append((f, "inside the output folder"))
            continue
        kind = "image" if is_image_path(f) else "video"
        suffix = ".png" if kind == "image" else f".{container}"
        dst = output / rel.with_suffix(suffix)
        if dst in taken:
            dst = output / rel.with_name(f"{rel.stem}_{f.suffix.lstrip('.')}{suffix}")
        taken.add(dst)
        jobs.append(Job(f, dst, kind))
    return jobs, skipped


# --- the command -----------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    configure_threads(args.threads)
    if args.batch < 1:
        raise InputError(f"--batch must be >= 1, got {args.batch}")
    if args.resolution < 0:
        raise InputError(f"--resolution must be >= 0, got {args.resolution}")
    make_strategy(args.temporal)  # refuse an unknown name before loading anything
    device = resolve_device(args.device)
    opts = ConvertOptions(
        alpha=args.alpha,
        preserve_color=args.preserve_color,
        resolution=args.resolution,
        precision=args.precision or ("auto" if device.type == "cuda" else "fp32"),
        compile=args.compile,
        temporal=args.temporal,
        batch=args.batch,
        codec=args.codec,
        crf=args.crf,
        preset=args.preset,
        pix_fmt=args.pix_fmt,
        container=args.container.lstrip("."),
        max_side=args.max_side,
        overwrite=args.overwrite,
        resume=args.resume,
        progress=not args.no_progress,
    )
    inputs = [Path(p) for p in args.inputs]
    output = Path(args.output)
    jobs, skipped = plan_jobs(inputs, output, opts.container)
    single = len(jobs) == 1 and not skipped and jobs[0].dst == output
    if single:
        check_output_path(output, opts.overwrite)
        if jobs[0].kind == "video":
            VideoReader(jobs[0].src).close()  # missing or non-media input: fail before loading
    else:
        if output.exists() and not output.is_dir():
            raise OutputError(f"output must be a folder for several inputs: {output}")
    gen = build_generator(args, device)
    code = style_code_from_args(args, gen)
    model = {
        "checkpoint": str(Path(args.checkpoint).resolve()) if args.checkpoint else None,
        "epoch": args.epoch,
        "untrained_seed": args.seed if args.untrained else None,
        "checkpoint_id": gen.checkpoint_id,
        "style": [str(Path(s).resolve()) for s in args.style],
        "style_sha": hashlib.sha256(
            np.ascontiguousarray(code.mean.cpu().numpy()).tobytes()
            + np.ascontiguousarray(code.std.cpu().numpy()).tobytes()
        ).hexdigest(),
        "style_size": args.style_size,
        "weights": parse_weights(args.weights),
    }
    conv = Converter(gen, code, opts, str(device), settings_key(opts, model))
    failed: list[tuple[Path, str]] = []
    for n, job in enumerate(jobs, 1):
        if conv.stop.is_set():
            break
        prefix = f"[{n}/{len(jobs)}] " if len(jobs) > 1 else ""
        try:
            if job.kind == "image":
                if not single:
                    job.dst.parent.mkdir(parents=True, exist_ok=True)
                t0 = time.perf_counter()
                conv.convert_image(job.src, job.dst)
                print(f"{prefix}{job.src} -> {job.dst} ({time.perf_counter() - t0:.2f} s)")
                continue
            if not single:
                job.dst.parent.mkdir(parents=True, exist_ok=True)
                if opts.resume and job.dst.exists() and not partial_path(job.dst).exists():
                    print(f"{prefix}{job.dst} is already done (--resume)")
                    continue
            res = conv.convert_video(job.src, job.dst)
            print(prefix + res.summary())
            if res.stopped:
                print(
                    f"castrt convert: warning: {job.src} is damaged: {res.stopped}; "
                    f"{job.dst} holds the {res.frames} frames before it",
                    file=sys.stderr,
                )
        except Interrupted:
            raise
        except CastRTError as exc:
            if single:
                raise
            reason = str(exc)
            if "not a readable media file" in reason or "no video stream" in reason:
                skipped.append((job.src, reason))
            else:
                failed.append((job.src, reason))
                print(f"castrt convert: error: {reason}", file=sys.stderr)
    if skipped:
        print(f"skipped {len(skipped)} file(s):")
        for p, why in skipped:
            print(f"  {p}: {why}")
    if failed:
        print(f"castrt convert: {len(failed)} of {len(jobs)} input(s) failed", file=sys.stderr)
        return 1
    return 0


def main_interrupted_exit(exc: Interrupted) -> int:  # pragma: no cover - trivial
    print(f"castrt convert: {exc}", file=sys.stderr)
    return EXIT_INTERRUPTED


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert",
        help="stylize video files, images and folders offline",
        description=(
            "Stylize videos (timing, size, audio and metadata kept), images and folders. "
            "Interrupted conversions are kept as NAME.partial.EXT and finished with --resume."
        ),
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="video/image file(s) or folder(s)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file (one input file) or folder (several inputs or a folder)",
    )
    add_style_args(p)
    p.add_argument(
        "--resolution",
        type=int,
        default=0,
        metavar="PX",
        help="processing shorter side for videos; output keeps the source size "
        "(0: native, the default)",
    )
    p.add_argument(
        "--precision",
        default=None,
        choices=PRECISIONS,
        help="engine precision (default: fp16 on CUDA, fp32 on CPU; auto also picks bf16 on "
        "CPUs with native bf16; mixed: fp32 encoder, exact AdaIN statistics, bf16/fp16 decoder)",
    )
    p.add_argument(
        "--compile",
        default="auto",
        choices=COMPILE_MODES,
        help="torch.compile mode for the engine (default auto: compiled on CUDA, off on CPU)",
    )
    p.add_argument(
        "--temporal",
        default="off",
        choices=STRATEGIES,
        help="temporal smoothing strategy (default off)",
    )
    p.add_argument("--batch", type=int, default=4, help="frames per engine call (default 4)")
    g = p.add_argument_group("encoding")
    g.add_argument("--codec", default="libx264", help="video encoder (default libx264)")
    g.add_argument("--crf", type=int, default=18, help="quality for x264/x265/vp9/av1 (default 18)")
    g.add_argument("--preset", default="medium", help="x264/x265 preset (default medium)")
    g.add_argument(
        "--pix-fmt",
        default=None,
        help="encoder pixel format (default yuv420p; yuv444p for odd sizes)",
    )
    g.add_argument(
        "--container",
        default="mp4",
        help="container for videos written into an output folder (default mp4)",
    )
    p.add_argument(
        "--max-side",
        type=int,
        default=DEFAULT_MAX_SIDE,
        help="images: longer side they are processed at (as castrt stylize)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument(
        "--resume",
        action="store_true",
        help="finish interrupted conversions without redoing finished frames",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_args(p)
    p.set_defaults(func=_run_cli)


def _run_cli(args: argparse.Namespace) -> int:
    try:
        return run(args)
    except Interrupted as exc:
        return main_interrupted_exit(exc)
