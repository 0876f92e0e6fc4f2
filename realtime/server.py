"""HTTP MJPEG stream and browser control panel beside the live pipeline (``castrt live --serve``).

Endpoints (every one needs the token when one is configured: ``?token=`` or
``Authorization: Bearer``; otherwise 401):

* ``/stream.mjpg``: ``multipart/x-mixed-replace`` MJPEG of the published frames (OBS Media or
  Browser Source, any browser);
* ``/snapshot.jpg``: the latest frame as one JPEG;
* ``/``: the control page (``realtime/web/``; plain JS, no external resources, works as an OBS
  custom browser dock); ``/view``: the stream alone, scaled to the window (OBS Browser Source);
* ``GET /api/state``, ``POST /api/style``, ``POST /api/settings``, ``POST /api/upload``.

Frames are handed over with :meth:`ControlServer.publish` (or :class:`MjpegSink`); publishing
only stores a reference and wakes the broadcaster thread, so the pipeline never waits for the
network. One :class:`StreamBroadcaster` thread serves all viewers with non-blocking sockets and
JPEG-encodes each frame at most once, and only while someone watches (or asks for a snapshot);
a slow viewer gets the newest frame when its previous one is out (the ones in between are
dropped for it alone), and a viewer that makes no progress for ``client_timeout_s`` is cut off.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import ipaddress
import json
import os
import re
import selectors
import socket
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.errors import CastRTError, InputError
from realtime.images import IMAGE_SUFFIXES, read_image
from realtime.settings import SettingsStore
from realtime.styles import StyleEntry

WEB_DIR = Path(__file__).resolve().parent / "web"
BOUNDARY = "castrtframe"
MAX_JSON_BYTES = 64 * 1024
THUMB_SIZE = 128  # thumbnail shorter side in pixels
_STATIC_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


# ---------------------------------------------------------------- configuration


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP addresses (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_serve_address(text: str) -> tuple[str, int]:
    """``"8080"`` → ``("127.0.0.1", 8080)``; ``"0.0.0.0:9000"``, ``"[::1]:9000"`` → (host, port).

    Port 0 asks the OS for a free port (tests). Raises :class:`InputError` on bad input.
    """
    raw = text.strip()
    host, sep, port_text = raw.rpartition(":")
    if not sep:
        host, port_text = "127.0.0.1", raw
    elif host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise InputError(f"--serve {text!r}: write IPv6 addresses in brackets, e.g. [::1]:8080")
    if not host:
        raise InputError(f"--serve {text!r}: empty host; use PORT or HOST:PORT")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InputError(f"--serve {text!r}: port must be a number 0-65535 (e.g. --serve 8080)")
    return host, int(port_text)


@dataclass(frozen=True)
class ServeConfig:
    """Where and how the control server listens. A non-loopback host requires a token."""

    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None
    jpeg_quality: int = 80
    max_upload_bytes: int = 10 * 1024 * 1024
    style_dir: Path | None = None  # uploads are stored here (None: uploads disabled)
    client_timeout_s: float = 10.0  # a client that stops reading is cut off after this

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise InputError(f"--serve: port must be 0-65535, got {self.port}")
        if self.token is not None and not self.token.strip():
            raise InputError("--token must not be empty")
        if not is_loopback(self.host) and self.token is None:
            raise InputError(
                f"--serve {self.host}:{self.port}: binding to a non-loopback address exposes the "
                "stream and controls to the network; add --token SECRET (or serve on 127.0.0.1)"
            )
        if not 1 <= self.jpeg_quality <= 100:
            raise InputError(f"jpeg_quality must be 1-100, got {self.jpeg_quality}")
        if self.max_upload_bytes < 1:
            raise InputError(f"max_upload_bytes must be >= 1, got {self.max_upload_bytes}")
        if self.client_timeout_s <= 0:
            raise InputError(f"client_timeout_s must be > 0, got {self.client_timeout_s}")


# ---------------------------------------------------------------- frames


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    """uint8 RGB (H, W, 3) → JPEG bytes (OpenCV wants BGR at its edge)."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


class FrameHub:
    """The latest published frame, JPEG-encoded lazily and at most once, shared by all clients."""

    def __init__(self, jpeg_quality: int) -> None:
        self._quality = jpeg_quality
        self._lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._raw: np.ndarray | None = None
        self._seq = 0
        self._jpeg: bytes = b""
        self._jpeg_seq = 0
        self._closed = False
        self.encoded = 0  # frames actually encoded (≤ published)

    @property
    def published(self) -> int:
        return self._seq

    @property
    def closed(self) -> bool:
        return self._closed

    def publish(self, rgb: np.ndarray) -> None:
        """Make ``rgb`` (uint8 (H, W, 3), not mutated afterwards) the latest frame; O(1)."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
        with self._lock:
            self._raw = rgb
            self._seq += 1

    def close(self) -> None:
        """Mark the hub finished (a restarted server makes a new one)."""
        with self._lock:
            self._closed = True

    def latest_jpeg(self) -> tuple[int, bytes] | None:
        """(sequence number, JPEG) of the newest frame, encoding it if nobody has yet."""
        with self._encode_lock:
            with self._lock:
                raw, seq = self._raw, self._seq
            if raw is None:
                return None
            if seq != self._jpeg_seq:
                self._jpeg = encode_jpeg(raw, self._quality)
                self._jpeg_seq = seq
                self.encoded += 1
            return self._jpeg_seq, self._jpeg


class _StreamClient:
    """One MJPEG viewer as the broadcaster sees it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.done = threading.Event()  # set when the broadcaster has let go of the socket
        self.seq = 0  # last frame handed to this client
        self.pending: memoryview | None = None  # rest of the part being sent
        self.last_progress = time.monotonic()
        self.mask = 0


class StreamBroadcaster:
    """One thread serves every MJPEG viewer with non-blocking sockets.

    Per viewer it sends whole parts, always the newest frame when the previous part is out
    (so a slow viewer skips frames for itself only); a viewer that makes no progress for
    ``timeout`` seconds, or hangs up, is dropped. One thread instead of one per viewer keeps
    the pipeline process free of per-frame wake-ups of many Python threads.
    """

    def __init__(self, hub: FrameHub, timeout: float) -> None:
        self._hub = hub
        self._timeout = timeout
        self._lock = threading.Lock()
        self._incoming: list[_StreamClient] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = False
        self._count = 0
        self._thread = threading.Thread(target=self._run, name="castrt-mjpeg", daemon=True)
        self._thread.start()

    @property
    def clients(self) -> int:
        return self._count

    def add(self, sock: socket.socket) -> _StreamClient:
        """Take over ``sock`` (headers already sent); wait on ``client.done`` to get it back."""
        client = _StreamClient(sock)
        with self._lock:
            if self._stopping:
                client.done.set()
                return client
            self._incoming.append(client)
            self._count += 1
        self.wake()
        return client

    def wake(self) -> None:
        """A new frame (or client) is there; never blocks."""
        with contextlib.suppress(OSError):  # a full wake-up pipe already means "wake up"
            self._wake_w.send(b"\0")

    def stop(self, timeout: float = 5.0) -> None:
        """Drop every viewer and end the thread."""
        with self._lock:
            self._stopping = True
        self.wake()
        self._thread.join(timeout)
        for s in (self._wake_r, self._wake_w):
            s.close()

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, None)
        clients: list[_StreamClient] = []
        part_seq, part = 0, b""
        try:
            while True:
                with self._lock:
                    incoming, self._incoming = self._incoming, []
                    stopping = self._stopping
                if stopping:
                    clients += incoming
                    break
                for c in incoming:
                    c.sock.setblocking(False)
                    c.mask = selectors.EVENT_READ
                    sel.register(c.sock, c.mask, c)
                    clients.append(c)
                if clients and self._hub.published > part_seq:
                    got = self._hub.latest_jpeg()  # encoded here, at most once per frame
                    if got is not None and got[0] != part_seq:
                        part_seq, jpeg = got
                        head = (
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n"
                        ).encode()
                        part = b"".join((head, jpeg, b"\r\n"))
                now = time.monotonic()
                for c in list(clients):
                    if c.pending is None and c.seq < part_seq:
                        c.seq, c.pending, c.last_progress = part_seq, memoryview(part), now
                    if c.pending is not None and not self._send(c):
                        self._drop(sel, clients, c)
                    elif c.pending is not None and now - c.last_progress > self._timeout:
                        self._drop(sel, clients, c)  # stalled: cut off
                    else:
                        mask = selectors.EVENT_READ | (
                            selectors.EVENT_WRITE if c.pending is not None else 0
                        )
                        if mask != c.mask:
                            c.mask = mask
                            sel.modify(c.sock, mask, c)
                waits = [c.last_progress + self._timeout - now for c in clients if c.pending]
                for key, mask in sel.select(max(0.01, min(waits, default=1.0))):
                    c = key.data
                    if c is None:
                        with contextlib.suppress(OSError):
                            while self._wake_r.recv(4096):
                                pass
                    elif mask & selectors.EVENT_READ and not self._readable(c):
                        self._drop(sel, clients, c)  # hung up
        finally:  # also after an unexpected error: no handler thread may wait forever
            with self._lock:
                self._stopping = True
                clients += self._incoming
                self._incoming = []
            for c in clients:
                with contextlib.suppress(KeyError, ValueError, OSError):
                    sel.unregister(c.sock)
                self._release(c)
            sel.close()

    def _send(self, c: _StreamClient) -> bool:
        """Send what the socket takes now; False if the client is gone."""
        assert c.pending is not None
        try:
            n = c.sock.send(c.pending)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if n:
            c.last_progress = time.monotonic()
            c.pending = c.pending[n:] if n < len(c.pending) else None
        return True

    @staticmethod
    def _readable(c: _StreamClient) -> bool:
        """Drain what the viewer sent (nothing is expected); False on hang-up."""
        try:
            return bool(c.sock.recv(4096))
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False

    def _drop(
        self, sel: selectors.BaseSelector, clients: list[_StreamClient], c: _StreamClient
    ) -> None:
        with contextlib.suppress(KeyError, ValueError, OSError):
            sel.unregister(c.sock)
        clients.remove(c)
        self._release(c)

    def _release(self, c: _StreamClient) -> None:
        with self._lock:
            self._count -= 1
        c.done.set()


# ---------------------------------------------------------------- the server


class _BadRequest(Exception):
    """An API request the server refuses (status + message, sent as JSON)."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def sanitize_upload_name(name: str) -> str:
    """A safe file name for an uploaded style, or :class:`_BadRequest` for a suspicious one.

    Names with path separators, ``..``, NUL or a leading dot are refused (never rewritten
    into something else); other odd characters become ``_``; the suffix must be an image type.
    """
    if not name or "/" in name or "\\" in name or "\0" in name or ".." in name:
        raise _BadRequest(HTTPStatus.BAD_REQUEST, f"refused upload name {name!r}: no paths")
    if name.startswith("."):
        raise _BadRequest(HTTPStatus.BAD_REQUEST, f"refused upload name {name!r}: hidden file")
    safe = _SAFE_NAME.sub("_", name)[:100]
    suffix = Path(safe).suffix.lower()
    if suffix not in IMAGE_SUFFIXES or not Path(safe).stem:
        allowed = ", ".join(sorted(IMAGE_SUFFIXES))
        raise _BadRequest(HTTPStatus.BAD_REQUEST, f"upload name needs an image suffix ({allowed})")
    return safe


_ASSET_REF = re.compile(rb'((?:src|href)=")([a-z]+\.(?:js|css))(")')


def _with_token(html: bytes, token: str) -> bytes:
    """The page's own script/style references carry the token too (every request needs it)."""
    q = urllib.parse.quote(token, safe="").encode()
    return _ASSET_REF.sub(lambda m: m[1] + m[2] + b"?token=" + q + m[3], html)


def _json_bool(body: dict[str, Any], key: str) -> bool:
    value = body[key]
    if not isinstance(value, bool):
        raise _BadRequest(HTTPStatus.BAD_REQUEST, f"{key} must be true or false")
    return value


def validate_settings_patch(body: Any, strategies: Sequence[str]) -> dict[str, Any]:
    """A ``POST /api/settings`` body → keyword changes for ``SettingsStore.update``."""
    if not isinstance(body, dict) or not body:
        raise _BadRequest(HTTPStatus.BAD_REQUEST, "expected a non-empty JSON object")
    allowed = ("alpha", "stylize", "temporal", "temporal_enabled", "preserve_color")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise _BadRequest(
            HTTPStatus.BAD_REQUEST,
            f"unknown setting(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}",
        )
    changes: dict[str, Any] = {}
    if "alpha" in body:
        alpha = body["alpha"]
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "alpha must be a number in [0, 1]")
        if not 0.0 <= float(alpha) <= 1.0:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"alpha must be in [0, 1], got {alpha}")
        changes["alpha"] = float(alpha)
    for key in ("stylize", "temporal_enabled", "preserve_color"):
        if key in body:
            changes[key] = _json_bool(body, key)
    if "temporal" in body:
        name = body["temporal"]
        if not isinstance(name, str) or name not in strategies:
            raise _BadRequest(
                HTTPStatus.BAD_REQUEST,
                f"unknown temporal strategy {name!r} (choose from {', '.join(strategies)})",
            )
        changes["temporal"] = name
    return changes


def _temporal_strategies() -> tuple[str, ...]:
    """Names the temporal module offers now (it grows with the temporal issue)."""
    from realtime import temporal

    return tuple(getattr(temporal, "STRATEGIES", ("off",)))


class ControlServer:
    """The HTTP server: MJPEG stream, snapshot, control page and JSON API on one port.

    ``styles`` is read live (uploads may append to it through ``add_style``, which stores
    nothing itself: it receives the saved file's path and returns the new style's index).
    """

    def __init__(
        self,
        config: ServeConfig,
        settings: SettingsStore,
        styles: list[StyleEntry],
        stats_fn: Callable[[], dict[str, Any]],
        add_style: Callable[[Path], int] | None = None,
    ) -> None:
        self.config = config
        self.settings = settings
        self.styles = styles
        self.stats_fn = stats_fn
        self.add_style = add_style
        self.hub = FrameHub(config.jpeg_quality)
        self._httpd: _Httpd | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._clients: dict[int, tuple[Any, threading.Thread]] = {}
        self._broadcaster: StreamBroadcaster | None = None
        self._thumbs: dict[tuple[int, str], bytes] = {}
        self._upload_lock = threading.Lock()

    # -- lifecycle

    def start(self) -> None:
        """Bind and serve in a background thread; InputError if the port cannot be bound."""
        if self._httpd is not None:
            return
        if self.hub.closed:  # restarted after stop(): a fresh frame hub
            self.hub = FrameHub(self.config.jpeg_quality)
        if self.config.style_dir is not None and self.add_style is not None:
            self.config.style_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._httpd = _Httpd((self.config.host, self.config.port), self)
        except OSError as exc:
            raise InputError(
                f"--serve {self.config.host}:{self.config.port}: cannot listen ({exc.strerror or exc}); "
                "pick another port"
            ) from None
        self._broadcaster = StreamBroadcaster(self.hub, self.config.client_timeout_s)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="castrt-http"
        )
        self._thread.daemon = True
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, cut off every client and join all server threads (bounded wait)."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self.hub.close()
        if self._broadcaster is not None:
            self._broadcaster.stop(timeout)
        httpd.shutdown()
        with self._lock:
            clients = list(self._clients.values())
        for sock, _thread in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(2)  # socket.SHUT_RDWR
        deadline = time.monotonic() + timeout
        for _sock, thread in clients:
            thread.join(max(0.0, deadline - time.monotonic()))
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> ControlServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> tuple[str, int]:
        """The bound (host, port); the port is the real one when 0 was asked."""
        if self._httpd is None:
            return self.config.host, self.config.port
        return self.config.host, int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL of the control page (with ``?token=`` when one is set)."""
        host, port = self.address
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        if ":" in shown:
            shown = f"[{shown}]"
        query = f"?token={urllib.parse.quote(self.config.token)}" if self.config.token else ""
        return f"http://{shown}:{port}/{query}"

    # -- frames

    def publish(self, frame_rgb: np.ndarray) -> None:
        """Offer the newest output frame to stream clients (never blocks on the network)."""
        self.hub.publish(frame_rgb)
        b = self._broadcaster
        if b is not None and b.clients:
            b.wake()

    @property
    def stream_clients(self) -> int:
        """MJPEG viewers connected now."""
        b = self._broadcaster
        return b.clients if b is not None else 0

    # -- used by the handler

    def _register(self, sock: Any) -> None:
        with self._lock:
            self._clients[id(sock)] = (sock, threading.current_thread())

    def _unregister(self, sock: Any) -> None:
        with self._lock:
            self._clients.pop(id(sock), None)

    def state(self) -> dict[str, Any]:
        """What ``GET /api/state`` returns: settings, styles, strategies, stats."""
        try:
            stats = dict(self.stats_fn())
        except Exception as exc:  # stats are informative only; never break the page
            stats = {"error": str(exc)}
        stats["stream_clients"] = self.stream_clients
        stats["frames_published"] = self.hub.published
        stats["frames_encoded"] = self.hub.encoded
        return {
            "settings": dataclasses.asdict(self.settings.get()),
            "styles": [
                {"index": i, "name": e.name, "thumbnail": f"/thumb/{i}.jpg"}
                for i, e in enumerate(list(self.styles))
            ],
            "temporal_strategies": list(_temporal_strategies()),
            "stats": stats,
            "upload": self._uploads_enabled(),
            "max_upload_bytes": self.config.max_upload_bytes,
        }

    def select_style(self, body: Any) -> int:
        """``{"index": i}`` or ``{"name": ...}`` → the selected index (settings updated)."""
        styles = list(self.styles)
        if not isinstance(body, dict):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, 'expected {"index": i} or {"name": ...}')
        if "index" in body:
            idx = body["index"]
            if isinstance(idx, bool) or not isinstance(idx, int) or not 0 <= idx < len(styles):
                raise _BadRequest(
                    HTTPStatus.BAD_REQUEST,
                    f"style index must be an integer 0-{len(styles) - 1}, got {idx!r}",
                )
        elif "name" in body:
            names = [e.name for e in styles]
            if body["name"] not in names:
                raise _BadRequest(HTTPStatus.NOT_FOUND, f"no style named {body['name']!r}")
            idx = names.index(body["name"])
        else:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, 'expected {"index": i} or {"name": ...}')
        self.settings.update(style_index=idx)
        return int(idx)

    def update_settings(self, body: Any) -> dict[str, Any]:
        changes = validate_settings_patch(body, _temporal_strategies())
        try:
            new = self.settings.update(**changes)
        except ValueError as exc:
            raise _BadRequest(HTTPStatus.BAD_REQUEST, str(exc)) from None
        return dataclasses.asdict(new)

    def thumbnail(self, index: int) -> bytes:
        """A small JPEG of style ``index`` (cached per index and file)."""
        styles = list(self.styles)
        if not 0 <= index < len(styles):
            raise _BadRequest(HTTPStatus.NOT_FOUND, f"no style {index}")
        entry = styles[index]
        key = (index, str(entry.path))
        with self._lock:
            cached = self._thumbs.get(key)
        if cached is not None:
            return cached
        rgb: np.ndarray
        if entry.path is None:
            rgb = np.full((THUMB_SIZE, THUMB_SIZE, 3), 128, np.uint8)
        else:
            try:
                rgb = read_image(entry.path)
            except CastRTError as exc:
                raise _BadRequest(HTTPStatus.NOT_FOUND, str(exc)) from None
            h, w = rgb.shape[:2]
            s = THUMB_SIZE / min(h, w)
            if s < 1:
                size = (max(1, round(w * s)), max(1, round(h * s)))
                rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        data = encode_jpeg(rgb, 85)
        with self._lock:
            self._thumbs[key] = data
        return data

    def _uploads_enabled(self) -> bool:
        return self.config.style_dir is not None and self.add_style is not None

    def save_upload(self, name: str, read: Callable[[int], bytes], length: int) -> dict[str, Any]:
        """Store an uploaded style image inside ``style_dir`` and register it."""
        style_dir, add_style = self.config.style_dir, self.add_style
        if style_dir is None or add_style is None:
            raise _BadRequest(HTTPStatus.FORBIDDEN, "uploads are disabled on this server")
        safe = sanitize_upload_name(name)
        if length > self.config.max_upload_bytes:
            raise _BadRequest(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"upload is {length} bytes; the limit is {self.config.max_upload_bytes}",
            )
        root = style_dir.resolve()
        fd, tmp_name = tempfile.mkstemp(prefix=".upload-", suffix=Path(safe).suffix, dir=root)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                remaining = length
                while remaining:
                    chunk = read(min(remaining, 1 << 16))
                    if not chunk:
                        raise _BadRequest(HTTPStatus.BAD_REQUEST, "upload body ended early")
                    fh.write(chunk)
                    remaining -= len(chunk)
            try:
                read_image(tmp)
            except CastRTError:
                raise _BadRequest(
                    HTTPStatus.BAD_REQUEST, f"{safe}: not a usable image (damaged or not an image)"
                ) from None
            with self._upload_lock:
                final = self._free_name(root, safe)
                if final.resolve().parent != root:  # belt and braces: never outside style_dir
                    raise _BadRequest(HTTPStatus.BAD_REQUEST, f"refused upload name {name!r}")
                os.link(tmp, final)  # fails rather than overwrite
        finally:
            with contextlib.suppress(OSError):
                tmp.unlink()
        try:
            index = add_style(final)
        except CastRTError as exc:
            with contextlib.suppress(OSError):
                final.unlink()
            raise _BadRequest(HTTPStatus.BAD_REQUEST, str(exc)) from None
        return {"index": index, "name": final.stem, "file": final.name}

    @staticmethod
    def _free_name(root: Path, safe: str) -> Path:
        stem, suffix = Path(safe).stem, Path(safe).suffix
        candidate = root / safe
        n = 1
        while candidate.exists():
            candidate = root / f"{stem}-{n}{suffix}"
            n += 1
        return candidate


class _Httpd(ThreadingHTTPServer):
    """ThreadingHTTPServer that knows its :class:`ControlServer`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: ControlServer) -> None:
        if ":" in address[0]:
            import socket

            self.address_family = socket.AF_INET6
        self.app = app
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    """One connection: authorise, route, answer (JSON errors for the API)."""

    server: _Httpd
    server_version = "castrt"
    sys_version = ""

    def setup(self) -> None:
        self.connection_timeout = self.server.app.config.client_timeout_s
        super().setup()
        self.connection.settimeout(self.connection_timeout)
        self.server.app._register(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.app._unregister(self.connection)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the pipeline owns stdout
        pass

    # -- helpers

    @property
    def app(self) -> ControlServer:
        return self.server.app

    def _send(
        self,
        status: HTTPStatus,
        body: bytes,
        content_type: str,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: HTTPStatus, obj: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", extra)

    def _error(self, status: HTTPStatus, message: str) -> None:
        extra = {"WWW-Authenticate": "Bearer"} if status == HTTPStatus.UNAUTHORIZED else None
        self._json(status, {"error": message}, extra)

    def _authorised(self, query: dict[str, list[str]]) -> bool:
        token = self.app.config.token
        if token is None:
            return True
        given = query.get("token", [""])[0]
        auth = self.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        return hmac.compare_digest(given.encode(), token.encode())

    def _host_allowed(self) -> bool:
        """Without a token, only loopback Host headers are served (DNS-rebinding guard)."""
        if self.app.config.token is not None:
            return True
        host = self.headers.get("Host", "")
        name = urllib.parse.urlsplit(f"//{host}").hostname or ""
        return name.lower() in _LOOPBACK_NAMES or is_loopback(name)

    def _read_json(self) -> Any:
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise _BadRequest(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the body as Content-Type: application/json"
            )
        length = self._content_length()
        if length > MAX_JSON_BYTES:
            raise _BadRequest(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "JSON body too large")
        try:
            return json.loads(self.rfile.read(length) or b"null")
        except (ValueError, UnicodeDecodeError):
            raise _BadRequest(HTTPStatus.BAD_REQUEST, "body is not valid JSON") from None

    def _content_length(self) -> int:
        text = self.headers.get("Content-Length")
        if text is None or not text.isdigit():
            raise _BadRequest(HTTPStatus.LENGTH_REQUIRED, "Content-Length required")
        return int(text)

    # -- routing

    def _route(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if not self._host_allowed():
            self._error(HTTPStatus.FORBIDDEN, "unexpected Host header; use http://127.0.0.1")
            return
        if not self._authorised(query):
            self._error(HTTPStatus.UNAUTHORIZED, "missing or wrong token (?token= or Bearer)")
            return
        try:
            if method == "GET":
                self._get(url.path, query)
            else:
                self._post(url.path, query)
        except _BadRequest as exc:
            self._error(exc.status, str(exc))

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def _get(self, path: str, query: dict[str, list[str]]) -> None:
        app = self.app
        if path == "/stream.mjpg":
            self._stream()
        elif path == "/snapshot.jpg":
            got = app.hub.latest_jpeg()
            if got is None:
                raise _BadRequest(HTTPStatus.SERVICE_UNAVAILABLE, "no frame yet")
            self._send(HTTPStatus.OK, got[1], "image/jpeg")
        elif path == "/api/state":
            self._json(HTTPStatus.OK, app.state())
        elif path.startswith("/thumb/") and path.endswith(".jpg"):
            idx = path[len("/thumb/") : -len(".jpg")]
            if not idx.isdigit():
                raise _BadRequest(HTTPStatus.NOT_FOUND, "no such thumbnail")
            self._send(HTTPStatus.OK, app.thumbnail(int(idx)), "image/jpeg")
        elif path in ("/", "/index.html", "/app.js", "/style.css", "/view", "/view.js"):
            name = {"/": "index.html", "/view": "view.html"}.get(path, path[1:])
            file = WEB_DIR / name
            body = file.read_bytes()
            if file.suffix == ".html" and app.config.token is not None:
                body = _with_token(body, app.config.token)
            csp = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'"
            self._send(
                HTTPStatus.OK,
                body,
                _STATIC_TYPES[file.suffix],
                {"Content-Security-Policy": csp},
            )
        else:
            raise _BadRequest(HTTPStatus.NOT_FOUND, f"no such path {path}")

    def _post(self, path: str, query: dict[str, list[str]]) -> None:
        app = self.app
        if path == "/api/style":
            self._json(HTTPStatus.OK, {"style_index": app.select_style(self._read_json())})
        elif path == "/api/settings":
            self._json(HTTPStatus.OK, {"settings": app.update_settings(self._read_json())})
        elif path == "/api/upload":
            ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if ctype in (
                "",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data",
            ):
                # only non-"simple" types: a foreign web page cannot post them without CORS
                raise _BadRequest(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    "send the raw image bytes with Content-Type image/* or application/octet-stream",
                )
            length = self._content_length()
            name = query.get("name", [""])[0]
            result = app.save_upload(name, self.rfile.read, length)
            self._json(HTTPStatus.OK, result)
        else:
            raise _BadRequest(HTTPStatus.NOT_FOUND, f"no such path {path}")

    def _stream(self) -> None:
        """Send the multipart headers, then hand the socket to the broadcaster until it ends."""
        broadcaster = self.app._broadcaster
        if broadcaster is None:
            raise _BadRequest(HTTPStatus.SERVICE_UNAVAILABLE, "server is stopping")
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache, no-store, must-revalidate")
        self.send_header("Pragma", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        client = broadcaster.add(self.connection)
        client.done.wait()  # no per-frame work in this thread


# ---------------------------------------------------------------- pipeline sink


class MjpegSink:
    """Pipeline sink that publishes every output frame to a :class:`ControlServer`."""

    name = "mjpeg"

    def __init__(self, server: ControlServer) -> None:
        self.server = server

    def open(self, info: Any) -> None:
        pass  # the server's lifetime is owned by whoever started it

    def write(self, frame: Any) -> None:
        self.server.publish(frame.image)

    def close(self) -> None:
        pass
