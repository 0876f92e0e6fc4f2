"""``castrt live``: camera / file / test pattern → stylize → window, virtual camera, recording.

Settings come from ``--config configs/live.yaml`` (a :class:`LiveConfig`), and every flag the
user gives overrides the preset. SIGINT/SIGTERM, ``q``/Esc or end of input stop the pipeline
in order and exit 0. ``--serve [HOST:]PORT`` adds the HTTP control server (``realtime.server``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from models.errors import InputError
from realtime.commands.common import (
    add_model_args,
    build_generator,
    configure_threads,
    resolve_device,
    unit_interval,
)
from realtime.config import load_config
from realtime.controls import Controls
from realtime.engine import EngineConfig, StylizeEngine
from realtime.hud import hud_lines
from realtime.images import write_image
from realtime.pipeline import (
    POLICIES,
    Frame,
    Pipeline,
    Policy,
    Sink,
    Source,
    SourceInfo,
    StylizeStage,
)
from realtime.settings import LiveSettings, SettingsStore
from realtime.sinks import (
    NullSink,
    RecordSink,
    SinkSpec,
    ThreadedSink,
    VirtualCameraSink,
    WindowSink,
    display_available,
    parse_sinks,
)
from realtime.sources import SourceOptions, open_source
from realtime.stats import PipelineStats, StatsReporter
from realtime.styles import DEFAULT_STYLE_SIZE, StyleBank, StyleEntry, default_cache_dir
from realtime.temporal import make_strategy


@dataclass(frozen=True)
class LiveConfig:
    """A ``castrt live`` preset (``configs/live*.yaml``); flags override single fields."""

    source: str = "0"
    sink: str = "window"
    width: int = 1280  # camera request / test pattern size
    height: int = 720
    fps: float = 30.0
    fourcc: str = "MJPG"
    policy: str = "auto"  # auto: live for cameras and the test pattern, lossless for files
    realtime: bool = False  # files and folders: pace to their timestamps
    loop: bool = False  # folders: start again at the end
    process_size: int = 0  # engine's processing shorter side (0: the frame's own)
    precision: str = (
        "auto"  # engine precision: auto (fp16 on CUDA, bf16 on capable CPUs), fp32, ...
    )
    compile: str = "auto"  # torch.compile mode (auto: default on CUDA, off on CPU; off, ...)
    alpha: float = 1.0
    temporal: str = "off"
    preserve_color: bool = False
    hud: bool = True
    style_size: int = DEFAULT_STYLE_SIZE
    stats: bool = False
    stats_interval: float = 2.0
    screenshot_dir: str = "."
    record_codec: str = "libx264"
    record_crf: int = 20

    def __post_init__(self) -> None:
        if self.policy not in ("auto", *POLICIES):
            raise ValueError(f"policy must be auto, live or lossless, got {self.policy!r}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {self.alpha}")
        if self.width < 0 or self.height < 0 or self.fps < 0 or self.process_size < 0:
            raise ValueError("width, height, fps and process_size must be >= 0")
        if self.stats_interval <= 0:
            raise ValueError(f"stats_interval must be > 0, got {self.stats_interval}")


def engine_config(cfg: LiveConfig, device: torch.device) -> EngineConfig:
    """The engine settings of a live run (only fields this engine build knows are passed)."""
    wanted: dict[str, Any] = {
        "device": str(device),
        "resolution": cfg.process_size,
        "precision": cfg.precision,
        "compile": cfg.compile,
    }
    known = {f.name for f in dataclasses.fields(EngineConfig)}
    return EngineConfig(**{k: v for k, v in wanted.items() if k in known})


def parse_resolution(text: str) -> tuple[int, int]:
    """``"1280x720"`` → (1280, 720); also ``720p``/``1080p``/``360p``."""
    t = text.strip().lower()
    named = {"360p": (640, 360), "480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080)}
    if t in named:
        return named[t]
    w, sep, h = t.partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 1 or int(h) < 1:
        raise argparse.ArgumentTypeError(f"--resolution must be WIDTHxHEIGHT or 720p, got {text!r}")
    return int(w), int(h)


def config_from_args(args: argparse.Namespace) -> LiveConfig:
    """The preset (if any) with the flags the user gave on top."""
    overrides: dict[str, Any] = {}
    for key in (
        "source", "sink", "fps", "fourcc", "policy", "process_size", "precision", "compile",
        "alpha", "temporal",
        "style_size", "stats_interval", "screenshot_dir", "record_codec", "record_crf",
    ):  # fmt: skip
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    for key in ("realtime", "loop", "preserve_color", "stats"):
        if getattr(args, key, False):
            overrides[key] = True
    if args.no_hud:
        overrides["hud"] = False
    if args.resolution is not None:
        overrides["width"], overrides["height"] = args.resolution
    return load_config(LiveConfig, args.config, overrides)


@contextmanager
def stop_on_signals(stop: Callable[[], None]) -> Iterator[None]:
    """SIGINT and SIGTERM call ``stop`` (ordered shutdown) while inside the block; a second
    signal raises KeyboardInterrupt (exit 130 after the same, time-limited, shutdown)."""
    previous: dict[signal.Signals, Any] = {}

    received: list[int] = []

    def handler(signum: int, _frame: object) -> None:
        if received:  # a second signal: the user insists; shutdown continues with timeouts
            raise KeyboardInterrupt
        received.append(signum)
        print(f"castrt live: {signal.Signals(signum).name}, stopping", file=sys.stderr)
        stop()

    for sig in (signal.SIGINT, signal.SIGTERM):
        # outside the main thread (embedded use) signals cannot be set: leave them alone
        with contextlib.suppress(ValueError):
            previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _load_server() -> Any:
    """The HTTP server module, imported only when ``--serve`` is given."""
    import realtime.server as server_mod

    return server_mod


def run(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    if not args.style:
        raise InputError("no style given: pass --style FILE_OR_DIR (repeatable)")
    sink_specs = parse_sinks(cfg.sink)
    make_strategy(cfg.temporal)  # an unknown --temporal name fails here, not on the first frame
    if args.token and not args.serve:
        raise InputError("--token is only used with --serve")
    server_mod = _load_server() if args.serve else None
    serve_addr = server_mod.parse_serve_address(args.serve) if server_mod else None
    configure_threads(args.threads)
    device = resolve_device(args.device)

    if any(s.kind == "window" for s in sink_specs) and not display_available():
        raise InputError(
            "--sink window: no display (DISPLAY is not set); use --sink null, vcam or "
            "record:OUT.mp4, or run under a desktop session or Xvfb"
        )
    # the source first: no camera → a clear message before loading any model
    source = open_source(
        cfg.source,
        SourceOptions(cfg.width, cfg.height, cfg.fps, cfg.fourcc, cfg.realtime, cfg.loop),
    )
    info = source.open()
    try:
        return _run_opened(args, cfg, sink_specs, server_mod, serve_addr, device, source, info)
    except BaseException:
        source.close()  # closing twice is harmless for every source
        raise


def _run_opened(
    args: argparse.Namespace,
    cfg: LiveConfig,
    sink_specs: list[SinkSpec],
    server_mod: Any,
    serve_addr: tuple[str, int] | None,
    device: torch.device,
    source: Source,
    info: SourceInfo,
) -> int:
    """Everything after the source is open (the caller closes it if this fails)."""
    gen = build_generator(args, device)
    bank = StyleBank(gen, cfg.style_size, None if args.no_cache else default_cache_dir())
    t0 = time.perf_counter()
    styles: list[StyleEntry] = bank.load(args.style)
    print(
        f"castrt live: {len(styles)} style(s) ready in {time.perf_counter() - t0:.2f} s: "
        + ", ".join(f"{i + 1}={e.name}" for i, e in enumerate(styles[:9]))
        + (" ..." if len(styles) > 9 else ""),
        file=sys.stderr,
    )
    engine = StylizeEngine(gen, engine_config(cfg, device))
    warmup = getattr(engine, "warmup", None)
    if warmup is not None and (device.type == "cuda" or getattr(engine, "compile", "off") != "off"):
        t0 = time.perf_counter()
        warmup(info.height, info.width, styles[0].code)  # compile/autotune before the frames
        print(f"castrt live: engine warm in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    store = SettingsStore(
        LiveSettings(
            alpha=cfg.alpha,
            temporal=cfg.temporal,
            preserve_color=cfg.preserve_color,
            show_hud=cfg.hud,
            stylize=not args.bypass,
        )
    )
    stats = PipelineStats()
    stage = StylizeStage(engine, styles, stats, step_down_on_oom=True)

    pipeline: Pipeline | None = None

    def stop() -> None:
        if pipeline is not None:
            pipeline.stop()

    sinks: list[Sink] = []
    window: WindowSink | None = None
    for spec in sink_specs:
        if spec.kind == "null":
            sinks.append(NullSink())
        elif spec.kind == "window":

            def hud(frame: Frame) -> list[str]:
                s = store.get()
                if not s.show_hud:
                    return []
                return hud_lines(stats.snapshot(), s, str(frame.info.get("style", "")))

            window = WindowSink("CAST-RT live", hud_text=hud, on_closed=stop)
            sinks.append(window)
        elif spec.kind == "vcam":
            sinks.append(
                ThreadedSink(
                    VirtualCameraSink(args.vcam_device, args.vcam_backend, cfg.fps), capacity=2
                )
            )
        elif spec.kind == "record":
            sinks.append(
                ThreadedSink(
                    RecordSink(
                        spec.arg, cfg.record_codec, cfg.record_crf, overwrite=args.overwrite
                    ),
                    capacity=64,
                    block=True,
                )
            )

    def screenshot() -> None:
        frame = window.last_frame if window is not None else None
        if frame is None:
            return
        path = (
            Path(cfg.screenshot_dir) / f"castrt-{time.strftime('%Y%m%d-%H%M%S')}-{frame.index}.png"
        )
        write_image(path, frame.image)
        print(f"castrt live: screenshot {path}", file=sys.stderr)

    if window is not None:
        window.on_key = Controls(store, styles, on_quit=stop, on_screenshot=screenshot).handle_key

    server = None
    if server_mod is not None and serve_addr is not None:
        first = Path(args.style[0])

        def add_style(path: Path) -> int:
            entry = StyleEntry(Path(path).stem, Path(path), bank.code_for_file(path))
            styles.append(entry)
            return len(styles) - 1

        server = server_mod.ControlServer(
            server_mod.ServeConfig(
                serve_addr[0],
                serve_addr[1],
                args.token,
                style_dir=first if first.is_dir() else None,
            ),
            store,
            styles,
            stats.snapshot,
            add_style=add_style,
        )
        sinks.append(server_mod.MjpegSink(server))

    policy: Policy = (
        ("live" if info.live else "lossless") if cfg.policy == "auto" else cfg.policy  # type: ignore[assignment]
    )
    stats.set_info(source=info.name, size=f"{info.width}x{info.height}", policy=policy)
    pipeline = Pipeline(source, stage, sinks, policy=policy, settings=store, stats=stats)
    pipeline.info = info
    print(
        f"castrt live: {info.name} {info.width}x{info.height}"
        f"{f'@{info.fps:g}' if info.fps else ''} → {', '.join(s.name for s in sinks)} "
        f"({policy} policy, device {device})",
        file=sys.stderr,
    )
    reporter = StatsReporter(
        stats.snapshot,
        cfg.stats_interval,
        print_to=sys.stderr if cfg.stats else None,
        json_path=Path(args.stats_json) if args.stats_json else None,
    )
    try:
        if server is not None:
            server.start()
            print(f"castrt live: serving on {server.url}", file=sys.stderr)
        reporter.start()
        # last step before run(), which always closes the sinks: open them (closes the
        # source and the sinks opened so far if one fails)
        pipeline.open()
        with stop_on_signals(pipeline.stop):
            report = pipeline.run(max_frames=args.max_frames)
    finally:
        reporter.stop()
        if server is not None:
            server.stop()
    print(f"castrt live: {report.summary()}", file=sys.stderr)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "live",
        help="live stylization: camera/file/test pattern → window, virtual camera, recording",
        description=(
            "Stylize a live source in real time. Hotkeys in the window: 1-9 n/p style, "
            "+/- strength, space original, t temporal smoothing, s screenshot, h HUD, q/Esc quit."
        ),
    )
    p.add_argument(
        "--source",
        metavar="SRC",
        help="camera index (0), /dev/videoN, a video FILE or URL, 'test' (synthetic scene) or an "
        "image folder (default from the config: 0)",
    )
    p.add_argument(
        "--sink",
        metavar="LIST",
        help="comma list of window, vcam, record:OUT.mp4, null (default: window)",
    )
    p.add_argument(
        "--style", action="append", metavar="FILE_OR_DIR", help="style image(s) or folder(s)"
    )
    p.add_argument("--config", metavar="YAML", help="preset, e.g. configs/live.yaml")
    p.add_argument("--max-frames", type=int, metavar="N", help="stop after N source frames")
    p.add_argument(
        "--resolution",
        type=parse_resolution,
        metavar="WxH",
        help="camera request / test pattern size (e.g. 1280x720 or 720p)",
    )
    p.add_argument("--fps", type=float, help="camera request / test pattern rate")
    p.add_argument("--fourcc", help="camera pixel format request (default MJPG)")
    p.add_argument(
        "--process-size",
        type=int,
        metavar="N",
        help="stylize at this shorter side and scale back (0: full size)",
    )
    p.add_argument("--precision", help="engine precision: auto (default), fp32, bf16, fp16, mixed")
    p.add_argument(
        "--compile",
        help="torch.compile mode for the engine: auto (default: compiled on CUDA, off on "
        "CPU), off, default, reduce-overhead",
    )
    p.add_argument("--policy", choices=("auto", *POLICIES), help="queue policy (default auto)")
    p.add_argument("--realtime", action="store_true", help="pace files to their timestamps")
    p.add_argument("--loop", action="store_true", help="image folders: loop forever")
    p.add_argument("--alpha", type=unit_interval("--alpha"), help="style strength in [0, 1]")
    p.add_argument("--temporal", metavar="NAME", help="temporal smoothing strategy (off, ema, ...)")
    p.add_argument("--preserve-color", action="store_true", help="keep the camera's colours")
    p.add_argument("--bypass", action="store_true", help="start showing the original frames")
    p.add_argument("--no-hud", action="store_true", help="start with the HUD hidden")
    p.add_argument(
        "--style-size", type=int, help=f"style encode size (default {DEFAULT_STYLE_SIZE})"
    )
    p.add_argument("--no-cache", action="store_true", help="no style-code disk cache")
    p.add_argument("--stats", action="store_true", help="print stats every few seconds")
    p.add_argument("--stats-interval", type=float, metavar="S", help="seconds between stats")
    p.add_argument("--stats-json", metavar="FILE", help="append stats as JSON lines to FILE")
    p.add_argument("--screenshot-dir", metavar="DIR", help="where `s` saves screenshots")
    p.add_argument("--record-codec", help="codec for record: (default libx264)")
    p.add_argument("--record-crf", type=int, help="quality for record: (default 20)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing recording")
    p.add_argument("--vcam-device", help="virtual camera device (e.g. /dev/video10)")
    p.add_argument("--vcam-backend", help="pyvirtualcam backend (v4l2loopback, obs, ...)")
    p.add_argument(
        "--serve", metavar="[HOST:]PORT", help="HTTP MJPEG stream + control page (realtime.server)"
    )
    p.add_argument("--token", help="access token for --serve (required off loopback)")
    add_model_args(p)
    p.set_defaults(func=run)
