"""The window sink opens a real window under Xvfb; a screenshot shows the frame, RGB intact.

Needs ``Xvfb`` and ``xwd`` (apt: xvfb x11-apps); skipped with a reason when they are absent.
The window runs in a subprocess, so an OpenCV/Qt abort cannot take pytest down.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from realtime.images import write_image
from realtime.sinks import display_available

ROOT = Path(__file__).resolve().parents[2]


def read_xwd(data: bytes) -> np.ndarray:
    """A TrueColor XWD screenshot (``xwd -root``) → uint8 (H, W, 3) RGB."""
    fields = struct.unpack(">25I", data[:100])
    header_size, _version, _fmt, _depth, width, height = fields[:6]
    byte_order, bits_per_pixel, bytes_per_line = fields[7], fields[11], fields[12]
    red_mask, green_mask, blue_mask = fields[14], fields[15], fields[16]
    ncolors = fields[19]
    bpp = bits_per_pixel // 8
    if bpp not in (3, 4):
        raise ValueError(f"unsupported XWD pixel size: {bits_per_pixel} bits")
    start = header_size + 12 * ncolors
    rows = np.frombuffer(data, np.uint8, count=bytes_per_line * height, offset=start)
    raw = rows.reshape(height, bytes_per_line)[:, : width * bpp].reshape(height, width, bpp)
    weights = [1 << (8 * i) for i in range(bpp)]  # least significant byte first
    if byte_order != 0:
        weights = weights[::-1]
    px = (raw.astype(np.uint32) * np.array(weights, np.uint32)).sum(axis=-1, dtype=np.uint32)

    def channel(mask: int) -> np.ndarray:
        shift = (mask & -mask).bit_length() - 1
        return ((px & mask) >> shift).astype(np.uint8)

    return np.stack([channel(red_mask), channel(green_mask), channel(blue_mask)], axis=-1)


def test_read_xwd_roundtrip() -> None:
    h, w = 2, 3
    header = [
        100,
        7,
        2,
        24,
        w,
        h,
        0,
        0,
        32,
        0,
        32,
        32,
        w * 4,
        4,
        0xFF0000,
        0xFF00,
        0xFF,
        8,
        256,
        0,
        w,
        h,
        0,
        0,
        0,
    ]
    px = np.array([[0xFF0000, 0x00FF00, 0x0000FF], [0, 0xFFFFFF, 0x123456]], "<u4")
    img = read_xwd(struct.pack(">25I", *header) + px.tobytes())
    assert img[0, 0].tolist() == [255, 0, 0] and img[1, 2].tolist() == [0x12, 0x34, 0x56]


@pytest.fixture
def xvfb_display() -> Iterator[str]:
    if not (shutil.which("Xvfb") and shutil.which("xwd")):
        pytest.skip("needs Xvfb and xwd (apt-get install -y xvfb x11-apps)")
    for n in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            break
    display = f":{n}"
    proc = subprocess.Popen(
        ["Xvfb", display, "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not Path(f"/tmp/.X11-unix/X{n}").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"Xvfb {display} did not start")
            time.sleep(0.05)
        yield display
    finally:
        proc.terminate()
        proc.wait(5)


WINDOW_SCRIPT = textwrap.dedent(
    """
    import subprocess, sys, cv2
    from realtime.pipeline import Pipeline, StylizeStage
    from realtime.settings import LiveSettings, SettingsStore
    from realtime.sinks import WindowSink
    from realtime.sources import ImageFolderSource
    from realtime.hud import hud_lines

    folder, shot = sys.argv[1], sys.argv[2]
    store = SettingsStore(LiveSettings(stylize=False, show_hud=True))

    class ShotWindow(WindowSink):
        def write(self, frame):
            super().write(frame)
            for _ in range(10):  # let Qt paint
                cv2.waitKey(30)
            with open(shot, "wb") as f:
                subprocess.run(["xwd", "-root", "-silent"], stdout=f, check=True)

    stats_fn = lambda: {"fps": 29.97, "latency_ms_p50": 12.0, "latency_ms_p95": 20.0,
                        "stage_ms": {"capture": 1.0, "process": 10.0}, "dropped": 3}
    window = ShotWindow("castrt-test", hud_text=lambda f: hud_lines(stats_fn(), store.get(), "bypass"))
    src = ImageFolderSource(folder, fps=5)
    # stylization bypassed: StylizeStage must hand the frame through untouched
    stage = StylizeStage(None, [None])
    report = Pipeline(src, stage, [window], policy="lossless", settings=store).run()
    print("frames", report.frames_written)
    """
)


@pytest.mark.slow
def test_window_sink_under_xvfb_shows_the_frame_in_rgb(xvfb_display: str, tmp_path: Path) -> None:
    h, w = 240, 360
    img = np.full((h, w, 3), 128, np.uint8)
    img[120:, : w // 3] = (255, 0, 0)
    img[120:, w // 3 : 2 * w // 3] = (0, 255, 0)
    img[120:, 2 * w // 3 :] = (0, 0, 255)
    frames = tmp_path / "frames"
    write_image(frames / "0.png", img)
    shot = tmp_path / "shot.xwd"
    script = tmp_path / "window.py"
    script.write_text(WINDOW_SCRIPT)
    env = {**os.environ, "DISPLAY": xvfb_display, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(script), str(frames), str(shot)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "frames 1" in proc.stdout
    screen = read_xwd(shot.read_bytes())
    write_image(tmp_path / "shot.png", screen)  # kept for a human look (pytest --basetemp)
    centres = {}
    for name, colour in {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}.items():
        ys, xs = np.nonzero(np.all(screen == colour, axis=-1))
        assert len(xs) > 0.8 * (w // 3) * 120, f"{name} patch missing from the screenshot"
        centres[name] = (xs.mean(), ys.mean())
    assert centres["red"][0] < centres["green"][0] < centres["blue"][0]  # not BGR-swapped
    assert abs(centres["red"][1] - centres["blue"][1]) < 2
    # the HUD: yellowish text drawn over the darkened top-left of the frame
    top = screen[: int(centres["red"][1]) - 70, : w // 2].astype(int)  # above the patches
    assert np.median(top) < 80  # darkened from the frame's grey 128
    yellowish = (top[..., 0] > 180) & (top[..., 1] > 180) & (top[..., 2] < 170)
    assert yellowish.sum() > 50


def test_window_refused_without_display(monkeypatch: pytest.MonkeyPatch) -> None:
    from models.errors import InputError
    from realtime.pipeline import SourceInfo
    from realtime.sinks import WindowSink

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    if sys.platform.startswith("linux"):
        assert not display_available()
        with pytest.raises(InputError, match="no display"):
            WindowSink().open(SourceInfo(32, 32, 30, True))
