"""Headless Chromium drives the control page while a real pipeline streams MJPEG.

Pipeline: the test-pattern source (paced, small) → StylizeStage (untrained engine) →
[MjpegSink → ControlServer, a recording sink]. Chromium (Debian's ``chromium`` +
``chromium-driver``, driven by Selenium; nothing is downloaded) opens the panel and clicks the
other style. Each stream frame read over HTTP is matched to the pipeline output it came from
(frame index), and that frame is re-stylized with both styles: after the click the stream
frames must be the new style's output of their own input frame.
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
from realtime.pipeline import Frame, Pipeline, SourceInfo, StylizeStage
from realtime.server import ControlServer, MjpegSink, ServeConfig
from realtime.settings import SettingsStore
from realtime.sources import TestPatternSource
from realtime.stream_bench import read_mjpeg_part
from realtime.styles import StyleBank
from tests.conftest import shared_path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
STYLES = ("candy.jpg", "sketch.png")
TOKEN = "browser-test-token"  # the page must pass it on to everything it loads  # colourful vs. grey: visibly different outputs

pytestmark = pytest.mark.slow


class RecordingSink:
    """Keeps the last pipeline outputs by frame index (to identify stream frames)."""

    name = "recording"

    def __init__(self) -> None:
        self.frames: dict[int, Frame] = {}
        self.lock = threading.Lock()

    def open(self, info: SourceInfo) -> None:
        pass

    def write(self, frame: Frame) -> None:
        with self.lock:
            self.frames[frame.index] = frame
            for old in [i for i in self.frames if i < frame.index - 200]:
                del self.frames[old]

    def close(self) -> None:
        pass

    def match(self, rgb: np.ndarray) -> Frame:
        """The recorded output frame a decoded stream frame came from (compared on luma:
        JPEG keeps it at full resolution, chroma is subsampled)."""
        with self.lock:
            frames = list(self.frames.values())
        errors = [_mae(_luma(rgb), _luma(f.image)) for f in frames]
        best = int(np.argmin(errors))
        assert errors[best] < 1.5, f"stream frame matches no pipeline output ({sorted(errors)})"
        return frames[best]


def _read_frames(port: int, n: int) -> list[np.ndarray]:
    """``n`` consecutive stream frames as uint8 RGB."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    conn.request("GET", f"/stream.mjpg?token={TOKEN}")
    resp = conn.getresponse()
    out = []
    try:
        while len(out) < n:
            data = read_mjpeg_part(resp.fp)
            assert data is not None, f"the stream ended after {len(out)} of {n} frames"
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            out.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    finally:
        conn.close()
    return out


def _luma(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


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

    source = TestPatternSource(64, 48, fps=15.0, realtime=True)
    engine = StylizeEngine(tiny_gen, EngineConfig(device="cpu"))
    bank = StyleBank(tiny_gen, style_size=64, cache_dir=None)
    styles = bank.load([shared_path("data", "style", name) for name in STYLES])

    def style_of(out: Frame) -> int:
        """Which style produced ``out``: re-stylize its input frame with each style."""
        src = source.render(out.index)
        errors = [_mae(out.image, engine.process(src, e.code)) for e in styles]
        assert max(errors) > 10.0  # the two styles really look different
        assert min(errors) < 0.25 * max(errors), f"frame {out.index}: no clear style {errors}"
        return int(np.argmin(errors))

    settings = SettingsStore()
    server = ControlServer(
        ServeConfig(port=0, token=TOKEN, jpeg_quality=95), settings, styles, dict
    )
    recorder = RecordingSink()
    pipeline = Pipeline(
        source,
        StylizeStage(engine, styles),
        [recorder, MjpegSink(server)],  # recorded before it can be streamed
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
        before = [recorder.match(f) for f in _read_frames(port, 2)]
        assert [style_of(f) for f in before] == [0, 0]
        assert {f.info["style"] for f in before} == {"candy"}

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
        # frames already captured/processed/published when the click landed keep the old
        # style (at most one per stage); every frame after the first new one is the new style
        after = [recorder.match(f) for f in _read_frames(port, 7)]
        seen = [style_of(f) for f in after]
        assert 1 in seen and seen.index(1) <= 3, seen
        assert all(k == 1 for k in seen[seen.index(1) :]), seen
        assert len({f.index for f in after}) == len(after)  # distinct (moving) frames
        assert after[-1].info["style"] == "sketch"

        chrome.find_element(By.ID, "stylize").click()  # stylize off: the original comes through
        _wait(lambda: not settings.get().stylize, what="stylize off from the page")
        shown = recorder.match(_read_frames(port, 5)[-1])
        assert _mae(shown.image, source.render(shown.index)) == 0.0  # the original frame

        chrome.execute_script(  # drag the strength slider
            "const a = document.getElementById('alpha'); a.value = '0.5';"
            "a.dispatchEvent(new Event('input', {bubbles: true}));"
        )
        _wait(lambda: settings.get().alpha == 0.5, what="strength from the slider")

        chrome.get(server.url.replace("/?", "/view?"))  # the OBS Browser Source page
        _wait(
            lambda: chrome.execute_script(
                "return document.getElementById('stream').naturalWidth === 64;"
            ),
            what="stream shown on /view",
        )
    finally:
        stop.set()
        runner.join(10)
        server.stop()
    assert not runner.is_alive()
