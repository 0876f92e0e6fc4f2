"""Headless Chromium drives the control page while a real pipeline streams MJPEG.

Pipeline: a paced still-image source → StylizeStage (untrained engine, small frames) →
MjpegSink → ControlServer. Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by
Selenium; nothing is downloaded) opens the panel and clicks the other style; the next stream
frames must match the engine's output for that style and no longer the first one.
"""

from __future__ import annotations

import http.client
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from realtime.engine import EngineConfig, StylizeEngine
from realtime.images import read_image
from realtime.pipeline import Frame, Pipeline, SourceInfo, StylizeStage
from realtime.server import ControlServer, MjpegSink, ServeConfig
from realtime.settings import SettingsStore
from realtime.styles import StyleBank, resize_shorter_side
from tests.conftest import shared_path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
STYLES = ("candy.jpg", "sketch.png")  # colourful vs. grey: visibly different outputs

pytestmark = pytest.mark.slow


class StillSource:
    """The same content frame at ``fps`` (a camera pointed at a still scene)."""

    def __init__(self, image: np.ndarray, fps: float = 20.0) -> None:
        self.image = image
        self.interval = 1.0 / fps
        self.i = 0

    def open(self) -> SourceInfo:
        h, w = self.image.shape[:2]
        return SourceInfo(w, h, 1.0 / self.interval, True, name="still")

    def read(self) -> Frame | None:
        time.sleep(self.interval)
        self.i += 1
        return Frame(self.i - 1, self.image)

    def close(self) -> None:
        pass


def _read_frames(port: int, n: int) -> list[np.ndarray]:
    """``n`` consecutive stream frames as uint8 RGB."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("GET", "/stream.mjpg")
    resp = conn.getresponse()
    out = []
    try:
        while len(out) < n:
            line = resp.fp.readline().strip()
            if not line.startswith(b"--"):
                continue
            length = 0
            while (h := resp.fp.readline().strip()) != b"":
                if h.lower().startswith(b"content-length:"):
                    length = int(h.split(b":")[1])
            bgr = cv2.imdecode(np.frombuffer(resp.fp.read(length), np.uint8), cv2.IMREAD_COLOR)
            out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        conn.close()
    return out


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


def _nearest(frame: np.ndarray, refs: list[np.ndarray]) -> int:
    return int(np.argmin([_mae(frame, r) for r in refs]))


@pytest.fixture
def chrome() -> Iterator[Any]:
    if not CHROMIUM.exists() or not CHROMEDRIVER.exists():
        pytest.skip(
            "needs Debian chromium + chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver): "
            "apt-get install -y chromium chromium-driver"
        )
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (dev extra)")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="castrt-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=800,900",
    ):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _wait(cond: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_browser_switches_style_and_stream_follows(chrome: Any, tiny_gen: Any) -> None:
    from selenium.webdriver.common.by import By

    content = resize_shorter_side(read_image(shared_path("data", "content", "chicago.jpg")), 48)
    content = np.ascontiguousarray(content[:48, :64])
    content.setflags(write=False)
    engine = StylizeEngine(tiny_gen, EngineConfig(device="cpu"))
    bank = StyleBank(tiny_gen, style_size=64, cache_dir=None)
    styles = bank.load([shared_path("data", "style", name) for name in STYLES])
    expected = [engine.process(content, e.code) for e in styles]
    assert _mae(expected[0], expected[1]) > 10  # the two styles really look different

    settings = SettingsStore()
    server = ControlServer(ServeConfig(port=0, jpeg_quality=95), settings, styles, dict)
    pipeline = Pipeline(
        StillSource(content),
        StylizeStage(engine, styles),
        [MjpegSink(server)],
        policy="live",
        settings=settings,
    )
    server.stats_fn = pipeline.stats.snapshot
    stop = threading.Event()
    runner = threading.Thread(target=pipeline.run, kwargs={"stop_event": stop}, daemon=True)
    server.start()
    runner.start()
    try:
        port = server.address[1]
        before = _read_frames(port, 2)
        assert all(_nearest(f, expected) == 0 for f in before)

        chrome.get(server.url)
        buttons = _wait(
            lambda: chrome.find_elements(By.CSS_SELECTOR, "#gallery button"), what="gallery"
        )
        assert [b.get_attribute("title") for b in buttons] == ["candy", "sketch"]
        _wait(
            lambda: chrome.execute_script(
                "return [...document.querySelectorAll('#gallery img')]"
                ".every(i => i.complete && i.naturalWidth > 0);"
            ),
            what="style thumbnails loaded in the page",
        )
        _wait(lambda: "fps" in chrome.find_element(By.ID, "stats").text, what="live stats on page")

        buttons[1].click()
        _wait(lambda: settings.get().style_index == 1, what="style switch from the page")
        _wait(
            lambda: "selected" in (buttons[1].get_attribute("class") or ""),
            what="selection shown",
        )
        after = _read_frames(port, 4)[1:]  # the first may still be in flight
        for f in after:
            assert _nearest(f, expected) == 1
            assert _mae(f, expected[1]) < 4.0  # JPEG q95 of the engine's own output

        chrome.find_element(By.ID, "stylize").click()  # stylize off: the original comes through
        _wait(lambda: not settings.get().stylize, what="stylize off from the page")
        original = _read_frames(port, 3)[-1]
        assert _mae(original, content) < 4.0
    finally:
        stop.set()
        runner.join(10)
        server.stop()
    assert not runner.is_alive()
