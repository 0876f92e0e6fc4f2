"""The HTTP control server: MJPEG stream, snapshot, JSON API, token, uploads, slow clients."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from models.errors import InputError
from models.style_code import StyleCode
from realtime.server import (
    ControlServer,
    MjpegSink,
    ServeConfig,
    parse_serve_address,
    sanitize_upload_name,
)
from realtime.settings import SettingsStore
from realtime.styles import StyleEntry

TOKEN = "s3cret-token"


def _code(seed: int) -> StyleCode:
    g = torch.Generator().manual_seed(seed)
    return StyleCode(
        mean=torch.rand(1, 512, 1, 1, generator=g), std=torch.rand(1, 512, 1, 1, generator=g) + 0.1
    )


def _png_bytes(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def style_files(tmp_path: Path) -> list[Path]:
    out = []
    for name, color in (("red", (220, 20, 20)), ("blue", (20, 20, 220))):
        p = tmp_path / "styles" / f"{name}.png"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(_png_bytes(color, (300, 200)))
        out.append(p)
    return out


def _make_server(
    style_files: list[Path], tmp_path: Path, **cfg: Any
) -> tuple[ControlServer, list[StyleEntry], list[Path]]:
    styles = [StyleEntry(p.stem, p, _code(i)) for i, p in enumerate(style_files)]
    added: list[Path] = []

    def add_style(path: Path) -> int:
        added.append(path)
        styles.append(StyleEntry(path.stem, path, _code(len(styles))))
        return len(styles) - 1

    config = ServeConfig(port=0, style_dir=tmp_path / "uploads", **cfg)
    server = ControlServer(config, SettingsStore(), styles, lambda: {"fps": 12.5}, add_style)
    return server, styles, added


@pytest.fixture
def server(style_files: list[Path], tmp_path: Path) -> Iterator[ControlServer]:
    srv, _, _ = _make_server(style_files, tmp_path)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


def _request(
    srv: ControlServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.address[1], timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _post_json(srv: ControlServer, path: str, obj: Any, **headers: str) -> tuple[int, Any]:
    status, _, data = _request(
        srv,
        "POST",
        path,
        json.dumps(obj).encode(),
        {"Content-Type": "application/json", **headers},
    )
    return status, json.loads(data)


def _read_mjpeg(srv: ControlServer, n: int, path: str = "/stream.mjpg") -> list[np.ndarray]:
    """Read ``n`` parts of the multipart stream with a plain HTTP client; decode each (BGR)."""
    conn = http.client.HTTPConnection("127.0.0.1", srv.address[1], timeout=10)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        assert resp.status == 200
        ctype = resp.getheader("Content-Type") or ""
        assert ctype.startswith("multipart/x-mixed-replace")
        boundary = ctype.split("boundary=")[1].encode()
        frames = []
        while len(frames) < n:
            line = resp.fp.readline()
            if not line.strip():
                continue
            assert line.strip() == b"--" + boundary
            part_headers: dict[str, str] = {}
            while (h := resp.fp.readline().strip()) != b"":
                k, v = h.decode().split(":", 1)
                part_headers[k.strip().lower()] = v.strip()
            assert part_headers["content-type"] == "image/jpeg"
            data = resp.fp.read(int(part_headers["content-length"]))
            img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            assert img is not None
            frames.append(img)
        return frames
    finally:
        conn.close()


class _Publisher:
    """Publishes solid frames of a given RGB colour until stopped (a stand-in pipeline)."""

    def __init__(self, srv: ControlServer, color: tuple[int, int, int], size=(48, 64)) -> None:
        self.srv, self.color, self.size = srv, color, size
        self.stop = threading.Event()
        self.durations: list[float] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            frame = np.empty((*self.size, 3), np.uint8)
            frame[:] = self.color
            t0 = time.perf_counter()
            self.srv.publish(frame)
            self.durations.append(time.perf_counter() - t0)
            time.sleep(0.01)

    def __enter__(self) -> _Publisher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)


# ---------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080", ("127.0.0.1", 8080)),
        ("0.0.0.0:9000", ("0.0.0.0", 9000)),
        ("localhost:81", ("localhost", 81)),
        ("[::1]:9000", ("::1", 9000)),
        (" 0 ", ("127.0.0.1", 0)),
    ],
)
def test_parse_serve_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_serve_address(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "70000", "host:", ":80", "::1:80", "1.2.3.4:-1"])
def test_parse_serve_address_refuses_bad_input(text: str) -> None:
    with pytest.raises(InputError, match="--serve"):
        parse_serve_address(text)


def test_non_loopback_host_needs_a_token() -> None:
    with pytest.raises(InputError, match="--token"):
        ServeConfig(host="0.0.0.0")
    ServeConfig(host="0.0.0.0", token="x")
    ServeConfig(host="127.0.0.2")  # loopback network
    ServeConfig(host="::1")
    with pytest.raises(InputError):
        ServeConfig(token=" ")
    with pytest.raises(InputError):
        ServeConfig(jpeg_quality=0)


def test_port_in_use_is_a_clear_error(server: ControlServer, tmp_path: Path) -> None:
    other = ControlServer(
        ServeConfig(port=server.address[1]), SettingsStore(), [], lambda: {}, None
    )
    with pytest.raises(InputError, match="cannot listen"):
        other.start()


# ---------------------------------------------------------------- stream and snapshot


def test_stream_delivers_decodable_frames_in_rgb_order(server: ControlServer) -> None:
    with _Publisher(server, (230, 30, 10)):
        frames = _read_mjpeg(server, 5)
    for bgr in frames:
        assert bgr.shape == (48, 64, 3)
        b, g, r = (float(bgr[..., c].mean()) for c in range(3))
        assert r > 200 and g < 60 and b < 50  # red stays red (RGB published, BGR decoded)
    assert server.hub.encoded <= server.hub.published


def test_ffmpeg_reads_the_stream_like_obs_media_source(server: ControlServer) -> None:
    """OBS's Media Source is FFmpeg: its mpjpeg demuxer must accept the stream (PyAV here)."""
    import av

    with _Publisher(server, (200, 0, 0)):
        container = av.open(f"http://127.0.0.1:{server.address[1]}/stream.mjpg", timeout=10)
        try:
            assert container.format.name == "mpjpeg"
            frames = []
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) == 3:
                    break
        finally:
            container.close()
    for rgb in frames:
        assert rgb.shape == (48, 64, 3) and rgb[..., 0].mean() > 180 and rgb[..., 2].mean() < 30


def test_snapshot_is_the_latest_frame(server: ControlServer) -> None:
    status, _, body = _request(server, "GET", "/snapshot.jpg")
    assert status == 503 and json.loads(body)["error"] == "no frame yet"
    frame = np.zeros((20, 30, 3), np.uint8)
    frame[..., 1] = 200
    server.publish(frame)
    status, headers, body = _request(server, "GET", "/snapshot.jpg")
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    bgr = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
    assert bgr.shape == (20, 30, 3) and bgr[..., 1].mean() > 180 and bgr[..., 2].mean() < 30


def test_each_frame_is_encoded_at_most_once_for_many_clients(server: ControlServer) -> None:
    results: list[int] = []

    def client() -> None:
        results.append(len(_read_mjpeg(server, 4)))

    with _Publisher(server, (10, 200, 10)):
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(20)
    assert results == [4, 4, 4, 4]
    assert 0 < server.hub.encoded <= server.hub.published


def test_no_encoding_while_nobody_watches(server: ControlServer) -> None:
    for _ in range(20):
        server.publish(np.zeros((8, 8, 3), np.uint8))
    assert server.hub.published == 20 and server.hub.encoded == 0


def test_stalled_client_never_slows_publishing_and_is_cut_off(
    style_files: list[Path], tmp_path: Path
) -> None:
    srv, _, _ = _make_server(style_files, tmp_path, client_timeout_s=0.5)
    srv.start()
    try:
        stalled = socket.create_connection(("127.0.0.1", srv.address[1]))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.sendall(b"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")  # never reads
        # big, noisy frames fill the socket buffers quickly
        noise = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
        durations = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            srv.publish(noise.copy())
            durations.append(time.perf_counter() - t0)
            time.sleep(0.005)
        assert max(durations) < 0.05  # publish never waits for a client
        good = _read_mjpeg(srv, 1)  # another client is still served meanwhile
        assert good[0].shape == (240, 320, 3)
        for _ in range(60):  # the stalled one is dropped after client_timeout_s
            if srv.stream_clients == 0:
                break
            srv.publish(noise.copy())
            time.sleep(0.1)
        assert srv.stream_clients == 0
        stalled.close()
    finally:
        srv.stop()


def test_stop_cuts_off_stream_clients_and_joins(server: ControlServer) -> None:
    before = threading.active_count()
    with _Publisher(server, (1, 2, 3)):
        conn = http.client.HTTPConnection("127.0.0.1", server.address[1], timeout=10)
        conn.request("GET", "/stream.mjpg")
        resp = conn.getresponse()
        resp.fp.readline()
        assert server.stream_clients == 1
        t0 = time.monotonic()
        server.stop()
        assert time.monotonic() - t0 < 3
        with pytest.raises((OSError, http.client.HTTPException, ValueError)):
            while resp.fp.read(65536):  # ends (EOF or reset) instead of hanging
                pass
            raise OSError("eof")
        conn.close()
    assert threading.active_count() <= before


def test_viewer_hang_up_is_noticed(server: ControlServer) -> None:
    with _Publisher(server, (9, 9, 9)):
        assert len(_read_mjpeg(server, 2)) == 2  # the connection is closed afterwards
        deadline = time.monotonic() + 5
        while server.stream_clients and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.stream_clients == 0


def test_mjpeg_sink_publishes_frame_images(server: ControlServer) -> None:
    sink = MjpegSink(server)
    sink.open(SimpleNamespace(width=16, height=8, fps=30.0))
    sink.write(SimpleNamespace(image=np.full((8, 16, 3), 77, np.uint8)))
    sink.close()
    assert server.hub.published == 1
    got = server.hub.latest_jpeg()
    assert got is not None and got[0] == 1


# ---------------------------------------------------------------- token and host


def test_token_is_required_for_every_path(style_files: list[Path], tmp_path: Path) -> None:
    srv, _, _ = _make_server(style_files, tmp_path, host="127.0.0.1", token=TOKEN)
    srv.start()
    try:
        srv.publish(np.zeros((8, 8, 3), np.uint8))
        for path in ("/", "/app.js", "/api/state", "/snapshot.jpg", "/stream.mjpg", "/thumb/0.jpg"):
            status, headers, body = _request(srv, "GET", path)
            assert status == 401, path
            assert headers.get("WWW-Authenticate") == "Bearer"
            assert "token" in json.loads(body)["error"]
            assert _request(srv, "GET", path + "?token=wrong")[0] == 401
        assert _post_json(srv, "/api/style", {"index": 1})[0] == 401
        assert srv.settings.get().style_index == 0
        assert _request(srv, "GET", f"/api/state?token={TOKEN}")[0] == 200
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert _request(srv, "GET", "/snapshot.jpg", headers=auth)[0] == 200
        assert _post_json(srv, "/api/style", {"index": 1}, **auth) == (200, {"style_index": 1})
        assert srv.url.endswith(f"/?token={TOKEN}")
        status, _, html = _request(srv, "GET", f"/?token={TOKEN}")  # assets carry the token
        assert status == 200
        for ref in (f'src="app.js?token={TOKEN}"', f'href="style.css?token={TOKEN}"'):
            assert ref.encode() in html
            assert _request(srv, "GET", "/" + ref.split('"')[1])[0] == 200
    finally:
        srv.stop()


def test_foreign_host_header_is_refused_without_token(server: ControlServer) -> None:
    """A DNS-rebinding page cannot reach the loopback server under its own host name."""
    status, _, _ = _request(server, "GET", "/api/state", headers={"Host": "evil.example:8080"})
    assert status == 403
    assert _request(server, "GET", "/api/state", headers={"Host": "localhost:8080"})[0] == 200


# ---------------------------------------------------------------- page and API


def test_control_page_and_assets_are_self_contained(server: ControlServer) -> None:
    status, headers, html = _request(server, "GET", "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assets = (
        ("/app.js", "text/javascript"),
        ("/style.css", "text/css"),
        ("/view", "text/html"),
        ("/view.js", "text/javascript"),
    )
    for asset, ctype in assets:
        status, headers, body = _request(server, "GET", asset)
        assert status == 200 and headers["Content-Type"].startswith(ctype)
        assert b"http://" not in body and b"https://" not in body  # no external resources
    assert b"app.js" in html and b"https://" not in html
    assert _request(server, "GET", "/../server.py")[0] == 404


def test_state_reports_settings_styles_and_stats(server: ControlServer) -> None:
    status, _, body = _request(server, "GET", "/api/state")
    state = json.loads(body)
    assert status == 200
    assert state["settings"]["style_index"] == 0 and state["settings"]["alpha"] == 1.0
    assert [s["name"] for s in state["styles"]] == ["red", "blue"]
    assert "off" in state["temporal_strategies"]
    assert state["stats"]["fps"] == 12.5 and state["stats"]["stream_clients"] == 0
    assert state["upload"] is True
    status, headers, thumb = _request(server, "GET", state["styles"][1]["thumbnail"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    bgr = cv2.imdecode(np.frombuffer(thumb, np.uint8), cv2.IMREAD_COLOR)
    assert min(bgr.shape[:2]) == 128 and bgr[..., 0].mean() > 180  # blue thumbnail
    assert _request(server, "GET", "/thumb/7.jpg")[0] == 404


def test_select_style_by_index_and_name(server: ControlServer) -> None:
    assert _post_json(server, "/api/style", {"index": 1}) == (200, {"style_index": 1})
    assert server.settings.get().style_index == 1
    assert _post_json(server, "/api/style", {"name": "red"}) == (200, {"style_index": 0})
    assert server.settings.get().style_index == 0
    for bad in ({"index": 2}, {"index": -1}, {"index": "1"}, {"index": True}, {}, [1]):
        status, body = _post_json(server, "/api/style", bad)
        assert status == 400 and "error" in body, bad
    assert _post_json(server, "/api/style", {"name": "nope"})[0] == 404
    assert server.settings.get().style_index == 0


def test_settings_are_validated_and_applied(server: ControlServer) -> None:
    status, body = _post_json(
        server,
        "/api/settings",
        {"alpha": 0.4, "stylize": False, "temporal": "ema", "preserve_color": True},
    )
    assert status == 200 and body["settings"]["alpha"] == 0.4
    s = server.settings.get()
    assert (s.alpha, s.stylize, s.temporal, s.preserve_color) == (0.4, False, "ema", True)
    bad_bodies: list[Any] = [
        {"alpha": 1.5},
        {"alpha": "0.5"},
        {"alpha": True},
        {"stylize": "yes"},
        {"temporal": "nope"},
        {"style_index": 1},
        {"version": 9},
        {},
        [],
    ]
    for bad in bad_bodies:
        status, body = _post_json(server, "/api/settings", bad)
        assert status == 400 and isinstance(body["error"], str), bad
    assert server.settings.get() == s  # nothing half-applied
    status, _, body = _request(
        server, "POST", "/api/settings", b"{not json", {"Content-Type": "application/json"}
    )
    assert status == 400 and "JSON" in json.loads(body)["error"]
    # a form post (what a foreign page could send without CORS) is refused
    status, _, _ = _request(
        server, "POST", "/api/settings", b'{"alpha": 0}', {"Content-Type": "text/plain"}
    )
    assert status == 415 and server.settings.get().alpha == 0.4


# ---------------------------------------------------------------- uploads


def _upload(srv: ControlServer, name: str, data: bytes, ctype: str = "image/png") -> Any:
    from urllib.parse import quote

    status, _, body = _request(
        srv, "POST", f"/api/upload?name={quote(name)}", data, {"Content-Type": ctype}
    )
    return status, json.loads(body)


def test_upload_stores_a_validated_image_inside_style_dir(
    style_files: list[Path], tmp_path: Path
) -> None:
    srv, styles, added = _make_server(style_files, tmp_path)
    with srv:
        status, body = _upload(srv, "my new style.png", _png_bytes((0, 200, 0)))
        assert status == 200 and body == {
            "index": 2,
            "name": "my_new_style",
            "file": "my_new_style.png",
        }
        status, body = _upload(srv, "my new style.png", _png_bytes((0, 100, 0)))
        assert status == 200 and body["file"] == "my_new_style-1.png"  # never overwrites
    upload_dir = tmp_path / "uploads"
    assert sorted(p.name for p in upload_dir.iterdir()) == [
        "my_new_style-1.png",
        "my_new_style.png",
    ]
    assert [p.parent for p in added] == [upload_dir.resolve()] * 2
    assert len(styles) == 4


@pytest.mark.parametrize(
    "name",
    [
        "../evil.png",
        "../../evil.png",
        "/tmp/evil.png",
        "sub/evil.png",
        "..\\evil.png",
        ".hidden.png",
        "..png",
    ],
)
def test_upload_path_traversal_is_refused(
    style_files: list[Path], tmp_path: Path, name: str
) -> None:
    srv, styles, added = _make_server(style_files, tmp_path)
    with srv:
        status, body = _upload(srv, name, _png_bytes((1, 2, 3)))
    assert status == 400 and "refused" in body["error"]
    assert added == [] and len(styles) == 2
    assert not (tmp_path / "evil.png").exists() and not Path("/tmp/evil.png").exists()
    assert list((tmp_path / "uploads").iterdir()) == []


def test_upload_refuses_non_images_oversize_and_wrong_type(
    style_files: list[Path], tmp_path: Path
) -> None:
    srv, _, added = _make_server(style_files, tmp_path, max_upload_bytes=2000)
    with srv:
        assert _upload(srv, "fake.png", b"this is not a png")[0] == 400
        assert _upload(srv, "big.png", b"\0" * 5000)[0] == 413
        assert _upload(srv, "x.exe", _png_bytes((1, 2, 3)))[0] == 400
        assert _upload(srv, "x.png", _png_bytes((1, 2, 3)), ctype="text/plain")[0] == 415
    assert added == [] and list((tmp_path / "uploads").iterdir()) == []


def test_uploads_disabled_without_style_dir(style_files: list[Path]) -> None:
    styles = [StyleEntry(p.stem, p, _code(0)) for p in style_files]
    with ControlServer(ServeConfig(port=0), SettingsStore(), styles, dict) as srv:
        assert _upload(srv, "a.png", _png_bytes((1, 2, 3)))[0] == 403
        assert json.loads(_request(srv, "GET", "/api/state")[2])["upload"] is False


def test_sanitize_upload_name() -> None:
    assert sanitize_upload_name("Starry Night (1889).JPG") == "Starry_Night_1889_.JPG"
    with pytest.raises(Exception, match="image suffix"):
        sanitize_upload_name("notes.txt")


# ---------------------------------------------------------------- castrt live --serve


@pytest.mark.slow
def test_castrt_live_serve_end_to_end(tmp_path: Path) -> None:
    """``castrt live --serve`` in a subprocess: state, stream, style switch, upload, SIGTERM."""
    import re
    import signal
    import subprocess
    import sys

    from tests.conftest import shared_path

    style_dir = tmp_path / "styles"
    style_dir.mkdir()
    for name in ("candy.jpg", "sketch.png"):
        (style_dir / name).write_bytes(shared_path("data", "style", name).read_bytes())
    repo = Path(__file__).resolve().parents[2]
    cmd = [sys.executable, "-m", "realtime.cli", "live", "--source", "test", "--sink", "null"]
    cmd += ["--style", str(style_dir), "--untrained", "--resolution", "64x48", "--no-cache"]
    cmd += ["--serve", "127.0.0.1:0", "--threads", "1"]
    proc = subprocess.Popen(cmd, cwd=repo, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        port = 0
        deadline = time.monotonic() + 120
        while not port and time.monotonic() < deadline:
            line = proc.stderr.readline()
            assert line, "castrt live ended before serving"
            if m := re.search(r"serving on http://127\.0\.0\.1:(\d+)/", line):
                port = int(m.group(1))
        srv = SimpleNamespace(address=("127.0.0.1", port))
        status, _, body = _request(srv, "GET", "/api/state")
        assert status == 200
        assert [s["name"] for s in json.loads(body)["styles"]] == ["candy", "sketch"]
        frames = _read_mjpeg(srv, 2)
        assert frames[0].shape == (48, 64, 3)
        assert _post_json(srv, "/api/style", {"index": 1}) == (200, {"style_index": 1})
        status, body = _upload(srv, "../x.png", _png_bytes((1, 2, 3)))
        assert status == 400
        status, body = _upload(srv, "new.png", _png_bytes((1, 2, 3)))
        assert status == 200 and body["index"] == 2 and (style_dir / "new.png").is_file()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
