"""``castrt live`` end to end (subprocesses) and the stylize stage (in process)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from models.generator import CASTGenerator
from realtime.commands.live import LiveConfig, config_from_args, parse_resolution
from realtime.engine import StylizeEngine
from realtime.images import write_image
from realtime.pipeline import Frame, Pipeline, StylizeStage
from realtime.settings import LiveSettings, SettingsStore
from realtime.sinks import NullSink
from realtime.sources import TestPatternSource
from realtime.styles import StyleBank

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def style_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    path = tmp_path / "style.png"
    write_image(path, rng.integers(0, 256, (40, 40, 3), dtype=np.uint8))
    return path


def castrt(*args: str, env: dict[str, str] | None = None) -> list[str]:
    return [sys.executable, "-m", "realtime.cli", "live", *args]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["XDG_CACHE_HOME"] = extra.pop("cache", env.get("XDG_CACHE_HOME", "/tmp"))
    env.update(extra)
    return env


@pytest.mark.slow
def test_test_source_to_null_and_record(style_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "rec.mp4"
    stats = tmp_path / "stats.jsonl"
    proc = subprocess.run(
        castrt(
            "--source",
            "test",
            "--sink",
            f"null,record:{out}",
            "--style",
            str(style_file),
            "--untrained",
            "--max-frames",
            "6",
            "--resolution",
            "64x48",
            "--policy",
            "lossless",
            "--stats-json",
            str(stats),
            "--no-cache",
            "--threads",
            "1",
        ),
        cwd=ROOT,
        env=_env(cache=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "6 frames out of 6 read" in proc.stderr and "stopped by max frames" in proc.stderr
    assert out.is_file()
    last = json.loads(stats.read_text().splitlines()[-1])
    assert last["frames_out"] == 6 and "process" in last["stage_ms"]


def start_test_source_to_null(
    style_file: Path, tmp_path: Path, *extra: str
) -> subprocess.Popen[str]:
    """``castrt live`` on the 64×48 test pattern into the null sink, in a subprocess."""
    return subprocess.Popen(
        castrt(
            "--source",
            "test",
            "--sink",
            "null",
            "--style",
            str(style_file),
            "--untrained",
            "--resolution",
            "64x48",
            "--no-cache",
            "--threads",
            "1",
            *extra,
        ),
        cwd=ROOT,
        env=_env(cache=str(tmp_path)),
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_sigterm_stops_in_order_with_exit_0(style_file: Path, tmp_path: Path) -> None:
    proc = start_test_source_to_null(style_file, tmp_path)
    assert proc.stderr is not None
    deadline = time.monotonic() + 90
    started = False
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if "→" in line:
            started = True
            break
    assert started, "pipeline never started"
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    try:
        rest = proc.communicate(timeout=20)[1]
    finally:
        proc.kill()
    assert proc.returncode == 0, rest
    assert "SIGTERM" in rest and "stopped by stop requested" in rest


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--source", "7", "--sink", "null"], "--source test"),
        (["--source", "test", "--sink", "window"], "no display"),
        (["--source", "test", "--sink", "tv"], "unknown sink"),
        (
            ["--source", "test", "--sink", "null", "--token", "x"],
            "--token is only used with --serve",
        ),
    ],
)
def test_user_errors_are_one_line(
    style_file: Path,
    args: list[str],
    needle: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from realtime.cli import main

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    code = main(["live", *args, "--style", str(style_file), "--untrained", "--no-cache"])
    err = capsys.readouterr().err
    assert code == 1
    errors = [ln for ln in err.splitlines() if "error" in ln]
    assert len(errors) == 1 and needle in errors[0] and "Traceback" not in err


def test_config_file_and_flag_overrides(tmp_path: Path) -> None:
    from realtime.cli import build_parser

    cfg_path = tmp_path / "p.yaml"
    cfg_path.write_text("source: test\nprocess_size: 360\nalpha: 0.5\n")
    args = build_parser().parse_args(
        ["live", "--config", str(cfg_path), "--alpha", "0.8", "--resolution", "720p"]
    )
    cfg = config_from_args(args)
    assert cfg == LiveConfig(source="test", process_size=360, alpha=0.8, width=1280, height=720)
    for preset in sorted((ROOT / "configs").glob("live*.yaml")):
        args = build_parser().parse_args(["live", "--config", str(preset)])
        config_from_args(args)  # every shipped preset loads
    assert parse_resolution("640x360") == (640, 360)


def test_stylize_stage_switches_styles_bypasses_and_keeps_size(
    tiny_gen: CASTGenerator, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    bank = StyleBank(tiny_gen, style_size=32)
    styles = bank.load([_png(rng, tmp_path / f"s{i}.png") for i in range(2)])
    stage = StylizeStage(StylizeEngine(tiny_gen), styles)
    img = rng.integers(0, 256, (30, 44, 3), dtype=np.uint8)
    frame = Frame(0, img)
    a = stage(frame, LiveSettings(style_index=0))
    b = stage(frame, LiveSettings(style_index=1))
    assert a.image.shape == img.shape and a.info["style"] == styles[0].name
    assert not np.array_equal(a.image, b.image)
    assert stage(frame, LiveSettings(style_index=2)).info["style"] == styles[0].name  # wraps
    assert stage(frame, LiveSettings(stylize=False)).image is img  # bypass: untouched
    placeholder = Frame(1, img, info={"placeholder": True})
    assert stage(placeholder, LiveSettings()).image is img
    smooth = stage(frame, LiveSettings(temporal="ema"))
    assert smooth.image.shape == img.shape


def _png(rng: np.random.Generator, path: Path) -> Path:
    write_image(path, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return path


def test_pipeline_with_stylize_stage_and_live_settings_change(
    tiny_gen: CASTGenerator, tmp_path: Path
) -> None:
    rng = np.random.default_rng(2)
    bank = StyleBank(tiny_gen, style_size=32)
    path = _png(rng, tmp_path / "p.png")
    store = SettingsStore(LiveSettings(stylize=False))
    stage = StylizeStage(StylizeEngine(tiny_gen), bank.load([path]))
    seen: list[bool] = []

    class Probe(NullSink):
        def write(self, frame: Frame) -> None:
            seen.append("style" in frame.info)
            if len(seen) == 2:
                store.update(stylize=True)  # takes effect on a later frame

    src = TestPatternSource(32, 24, realtime=False, frames=6)
    report = Pipeline(src, stage, [Probe()], policy="lossless", settings=store).run()
    assert report.frames_written == 6
    assert seen[:2] == [False, False] and seen[-1] is True


@pytest.mark.slow
def test_serve_wires_the_control_server(style_file: Path, tmp_path: Path) -> None:
    import re
    import urllib.request

    proc = start_test_source_to_null(style_file, tmp_path, "--serve", "127.0.0.1:0")
    assert proc.stderr is not None
    try:
        url = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and url is None:
            m = re.search(r"serving on (http://\S+)", proc.stderr.readline())
            url = m.group(1) if m else None
        assert url, "no 'serving on' line"
        base = url.split("?")[0].rstrip("/")
        state = None
        for _ in range(100):  # until the first frame is published
            try:
                with urllib.request.urlopen(f"{base}/snapshot.jpg", timeout=5) as r:
                    if r.status == 200 and r.read(3)[:2] == b"\xff\xd8":
                        break
            except OSError:
                pass
            time.sleep(0.1)
        with urllib.request.urlopen(f"{base}/api/state", timeout=5) as r:
            state = json.loads(r.read())
        assert state is not None and "style" in json.dumps(state)
        proc.send_signal(signal.SIGTERM)
        rest = proc.communicate(timeout=20)[1]
        assert proc.returncode == 0, rest
    finally:
        proc.kill()


def test_stylize_stage_times_upload_model_download(tiny_gen: CASTGenerator, tmp_path: Path) -> None:
    from realtime.stats import PipelineStats

    rng = np.random.default_rng(3)
    stats = PipelineStats()
    engine = StylizeEngine(tiny_gen)
    styles = StyleBank(tiny_gen, style_size=32).load([_png(rng, tmp_path / "t.png")])
    stage = StylizeStage(engine, styles, stats)
    img = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    out = stage(Frame(0, img), LiveSettings()).image
    assert np.array_equal(out, engine.process(img, styles[0].code))  # same result as process()
    stage(Frame(1, img), LiveSettings(temporal="ema"))
    assert {"upload", "model", "download", "model+smoothing"} <= set(stats.snapshot()["stage_ms"])


def test_record_onto_existing_file_is_one_line_and_leaves_it(
    style_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from realtime.cli import main

    out = tmp_path / "take.mp4"
    out.write_bytes(b"keep")
    code = main(
        ["live", "--source", "test", "--sink", f"null,record:{out}", "--style", str(style_file),
         "--untrained", "--no-cache", "--resolution", "64x48", "--max-frames", "2"]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "exists" in err and "Traceback" not in err
    assert out.read_bytes() == b"keep"
    assert not [t for t in threading.enumerate() if t.name.startswith("castrt-")]
