"""Benchmark: does serving MJPEG to many clients slow the pipeline down?

    python -m realtime.stream_bench --clients 20 --seconds 30 --size 640x360

One pipeline (synthetic moving frames → StylizeStage with the untrained engine → MjpegSink →
ControlServer on 127.0.0.1) runs for the whole benchmark, lossless policy so it runs exactly at
the engine's rate. Phases alternate: no stream client, then ``--clients`` concurrent MJPEG
readers (in a separate process, like real viewers; they parse every part, and decode it with
``--decode``), repeated ``--repeats`` times. The pipeline's output fps in each phase is the
number of frames it published divided by the phase length; the result is the loss ratio
measured side by side in one run. Loopback only; every loop is bounded by time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np


def read_mjpeg_part(fp: Any) -> bytes | None:
    """The next JPEG of a ``multipart/x-mixed-replace`` body read from ``fp``; None at its end."""
    while True:
        line = fp.readline()
        if not line:
            return None
        if line.startswith(b"--"):
            break
    length = 0
    while (h := fp.readline().strip()) != b"":
        if h.lower().startswith(b"content-length:"):
            length = int(h.split(b":")[1])
    data: bytes = fp.read(length)
    return data


def read_stream(host: str, port: int, seconds: float, decode: bool) -> dict[str, float]:
    """One client: read ``/stream.mjpg`` for ``seconds``; frames and bytes received."""
    frames = nbytes = 0
    first = last = 0.0
    deadline = time.monotonic() + seconds
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request("GET", "/stream.mjpg")
        resp = conn.getresponse()
        while time.monotonic() < deadline:
            data = read_mjpeg_part(resp.fp)
            if data is None:
                break
            if decode:
                import cv2

                cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            frames += 1
            nbytes += len(data)
            last = time.monotonic()
            first = first or last
    except OSError:
        pass
    finally:
        conn.close()
    fps = (frames - 1) / (last - first) if frames > 1 and last > first else 0.0
    return {"frames": frames, "bytes": nbytes, "fps": fps}


def run_clients(
    host: str, port: int, n: int, seconds: float, decode: bool
) -> list[dict[str, float]]:
    """``n`` concurrent clients (threads) for ``seconds``."""
    results: list[dict[str, float]] = [{} for _ in range(n)]

    def one(i: int) -> None:
        results[i] = read_stream(host, port, seconds, decode)

    threads = [threading.Thread(target=one, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 15)
    return results


def moving_frames(width: int, height: int, count: int = 16) -> list[np.ndarray]:
    """Pre-rendered synthetic frames (gradient, moving squares) so the source costs nothing."""
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack(
        [xx * 255 // max(1, width - 1), yy * 255 // max(1, height - 1), (xx + yy) % 256], axis=-1
    ).astype(np.uint8)
    out = []
    for i in range(count):
        f = base.copy()
        s = max(4, min(width, height) // 5)
        x = (i * width // count) % max(1, width - s)
        f[height // 3 : height // 3 + s, x : x + s] = (240, 40, 40)
        f[: s // 2, -x - s // 2 or None :][:, : s // 2] = (20, 20, 230)
        f.setflags(write=False)
        out.append(f)
    return out


@dataclass
class Phase:
    clients: int
    seconds: float
    frames: int
    client_frames: list[float]
    cpu_cores: float  # CPU time of the pipeline process per wall second during the phase
    client_cpu_s: float  # CPU seconds the client process used in total (0: none)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds


def _parse_size(text: str) -> tuple[int, int]:
    w, _, h = text.lower().partition("x")
    if not (w.isdigit() and h.isdigit()) or int(w) < 8 or int(h) < 8:
        raise SystemExit(f"--size: expected WxH (e.g. 640x360), got {text!r}")
    return int(w), int(h)


def bench(args: argparse.Namespace) -> list[Phase]:
    """Run the pipeline and the alternating phases; return the measured phases."""
    import torch

    from models.generator import untrained_generator
    from realtime.engine import EngineConfig, StylizeEngine
    from realtime.pipeline import Frame, Pipeline, SourceInfo, StylizeStage, passthrough
    from realtime.server import ControlServer, MjpegSink, ServeConfig
    from realtime.settings import SettingsStore
    from realtime.styles import StyleBank

    if args.threads:
        torch.set_num_threads(args.threads)
    width, height = _parse_size(args.size)
    frames = moving_frames(width, height)
    start = time.perf_counter()

    class SyntheticSource:
        def __init__(self) -> None:
            self.i = 0

        def open(self) -> SourceInfo:
            return SourceInfo(width, height, 0.0, False, name="synthetic")

        def read(self) -> Frame | None:
            if args.fps > 0:  # paced like a camera
                next_t = start + self.i / args.fps
                time.sleep(max(0.0, next_t - time.perf_counter()))
            self.i += 1
            return Frame(self.i - 1, frames[self.i % len(frames)])

        def close(self) -> None:
            pass

    gen = untrained_generator(seed=0, with_photo_decoder=False)
    engine = StylizeEngine(gen, EngineConfig(device="cpu"))
    bank = StyleBank(gen, style_size=64, cache_dir=None)
    style_rgb = np.ascontiguousarray(frames[3][::-1])
    from realtime.styles import StyleEntry

    styles = [StyleEntry("synthetic", None, bank.encode_rgb(style_rgb, name="synthetic"))]
    settings = SettingsStore()
    server = ControlServer(
        ServeConfig(port=0, jpeg_quality=args.jpeg_quality), settings, styles, dict
    )
    processor = StylizeStage(engine, styles) if args.processor == "stylize" else passthrough
    pipeline = Pipeline(SyntheticSource(), processor, [MjpegSink(server)], "lossless", settings)
    stop = threading.Event()
    runner = threading.Thread(target=pipeline.run, kwargs={"stop_event": stop}, daemon=True)
    server.start()
    runner.start()
    port = server.address[1]
    phases: list[Phase] = []
    try:
        time.sleep(args.warmup)
        for _ in range(args.repeats):
            for n in (0, args.clients):
                phases.append(_phase(server, port, n, args))
                print(
                    f"clients={n:2d}  pipeline fps={phases[-1].fps:6.2f}  "
                    f"cpu={phases[-1].cpu_cores:.2f} cores  client cpu={phases[-1].client_cpu_s:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        stop.set()
        runner.join(30)
        server.stop()
    return phases


def _phase(server: Any, port: int, n: int, args: argparse.Namespace) -> Phase:
    """Measure published frames over ``args.seconds`` with ``n`` clients connected."""
    proc = None
    if n:
        cmd = [sys.executable, "-m", "realtime.stream_bench", "--client-mode", str(port)]
        cmd += ["--clients", str(n), "--seconds", str(args.seconds + 3)]
        cmd += ["--decode"] if args.decode else []
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while server.stream_clients < n and time.monotonic() < deadline:
            time.sleep(0.05)
        if server.stream_clients < n:
            proc.kill()
            raise SystemExit(f"only {server.stream_clients} of {n} clients connected")
        time.sleep(1.0)  # let them settle
    start_frames, t0, c0 = server.hub.published, time.perf_counter(), time.process_time()
    time.sleep(args.seconds)
    frames, elapsed = server.hub.published - start_frames, time.perf_counter() - t0
    cpu = time.process_time() - c0
    client_frames: list[float] = []
    client_cpu = 0.0
    if proc is not None:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        out, _ = proc.communicate(timeout=args.seconds + 60)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        client_cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
        client_frames = [r.get("fps", 0.0) for r in json.loads(out)]
    return Phase(n, elapsed, frames, client_frames, cpu / elapsed, client_cpu)


def markdown(phases: list[Phase], args: argparse.Namespace) -> str:
    """The result table (with the loss ratio of loaded vs. unloaded phases)."""
    lines = [
        f"size {args.size}, processor {args.processor}"
        + (" (untrained engine, CPU)" if args.processor == "stylize" else "")
        + (f", source paced at {args.fps:g} fps" if args.fps else ", source unpaced")
        + f", {args.seconds:.0f} s per phase, "
        f"JPEG quality {args.jpeg_quality}, clients {'decode' if args.decode else 'parse'} frames",
        "",
        "| phase | stream clients | pipeline fps | pipeline-process CPU ms/frame | fps received per client (min–max) |",
        "|---|---|---|---|---|",
    ]
    for i, p in enumerate(phases):
        rx = f"{min(p.client_frames):.1f}–{max(p.client_frames):.1f}" if p.client_frames else "–"
        cpu_ms = 1000 * p.cpu_cores / p.fps if p.fps else float("nan")
        lines.append(f"| {i + 1} | {p.clients} | {p.fps:.2f} | {cpu_ms:.1f} | {rx} |")
    base = [p.fps for p in phases if p.clients == 0]
    loaded = [p.fps for p in phases if p.clients > 0]
    if base and loaded:
        b, ld = float(np.mean(base)), float(np.mean(loaded))
        cb = float(np.mean([1000 * p.cpu_cores / p.fps for p in phases if p.clients == 0]))
        cl = float(np.mean([1000 * p.cpu_cores / p.fps for p in phases if p.clients > 0]))
        lines += [
            "",
            f"mean fps without clients {b:.2f}, with {args.clients} clients {ld:.2f}: "
            f"change {100 * (ld - b) / b:+.1f}%; pipeline-process CPU per frame "
            f"{cb:.1f} → {cl:.1f} ms ({cl - cb:+.1f} ms)",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m realtime.stream_bench", description=__doc__.split("\n")[0]
    )
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30.0, help="length of each phase")
    p.add_argument("--repeats", type=int, default=2, help="(none, loaded) pairs")
    p.add_argument("--warmup", type=float, default=5.0)
    p.add_argument("--size", default="640x360", help="frame size WxH")
    p.add_argument(
        "--processor",
        choices=("stylize", "passthrough"),
        default="stylize",
        help="stylize (untrained engine) or passthrough (server cost alone)",
    )
    p.add_argument("--fps", type=float, default=0.0, help="pace the source (0: as fast as it goes)")
    p.add_argument("--jpeg-quality", type=int, default=80)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    p.add_argument("--decode", action="store_true", help="clients decode every JPEG")
    p.add_argument("--client-mode", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if not 1 <= args.clients <= 200 or not 0 < args.seconds <= 600:
        raise SystemExit("--clients must be 1-200 and --seconds in (0, 600]")
    if args.client_mode is not None:
        results = run_clients(
            "127.0.0.1", args.client_mode, args.clients, args.seconds, args.decode
        )
        print(json.dumps(results))
        return 0
    phases = bench(args)
    print(markdown(phases, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
