"""The style bank: style images → cached :class:`StyleCode` (memory and disk), switching, mixing.

A code depends on the style file's bytes, the size it is encoded at and the encoder
weights; the disk cache is keyed by all three, so a stale code is never reused.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from models import functional as Fn
from models.errors import InputError, StyleCodeError
from models.fileio import sha256_file
from models.generator import CASTGenerator
from models.style_code import StyleCode, interpolate_codes
from realtime.images import is_image_path, read_image

DEFAULT_STYLE_SIZE = 256  # the reference encodes styles at 256 px


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cast-rt/style-codes`` (``~/.cache/...`` by default)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cast-rt" / "style-codes"


def resize_shorter_side(rgb: np.ndarray, size: int) -> np.ndarray:
    """Bicubic resize (Pillow, as the reference) so the shorter side is ``size``; 0 keeps it."""
    if size <= 0:
        return rgb
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    if (new_w, new_h) == (w, h):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((new_w, new_h), Image.Resampling.BICUBIC))


def rgb_to_tensor(rgb: np.ndarray) -> Tensor:
    """uint8 (H, W, 3) → float (1, 3, H, W) in [-1, 1]."""
    arr = rgb if rgb.flags.writeable and rgb.flags.c_contiguous else np.array(rgb, order="C")
    return Fn.uint8_to_unit(torch.from_numpy(arr))


def list_style_files(paths: list[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and folders (sorted image files inside) into a list of style files."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(q for q in p.iterdir() if q.is_file() and is_image_path(q))
            if not found:
                raise InputError(f"{p}: style folder holds no images")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise InputError(f"{p}: style file not found")
    if not out:
        raise InputError("no style given: pass --style FILE_OR_DIR")
    return out


@dataclass(frozen=True)
class StyleEntry:
    """One style in the bank: its name, file and code."""

    name: str
    path: Path | None
    code: StyleCode


class StyleBank:
    """Encodes style images once per (file bytes, size, encoder) and keeps the codes.

    ``cache_dir=None`` disables the disk cache (memory only).
    """

    def __init__(
        self,
        generator: CASTGenerator,
        style_size: int = DEFAULT_STYLE_SIZE,
        cache_dir: Path | None = None,
    ) -> None:
        if style_size < 0:
            raise InputError(f"--style-size must be >= 0, got {style_size}")
        self.generator = generator
        self.style_size = style_size
        self.cache_dir = cache_dir
        self._memory: dict[tuple[str, int, str], StyleCode] = {}

    def _cache_path(self, digest: str) -> Path | None:
        if self.cache_dir is None:
            return None
        return (
            self.cache_dir
            / f"{digest[:32]}_{self.style_size}_{self.generator.checkpoint_id}.safetensors"
        )

    def code_for_file(self, path: str | os.PathLike[str]) -> StyleCode:
        """The code of a style image file, from memory, disk cache or a fresh encode."""
        p = Path(path)
        if not p.is_file():
            raise InputError(f"{p}: style file not found")
        digest = sha256_file(p)
        key = (digest, self.style_size, self.generator.checkpoint_id)
        if key in self._memory:
            return self._memory[key]
        cache = self._cache_path(digest)
        code: StyleCode | None = None
        if cache is not None and cache.is_file():
            try:
                code = StyleCode.load(cache)
                if code.checkpoint_id != self.generator.checkpoint_id:
                    code = None
            except StyleCodeError:
                code = None  # a damaged cache entry is recomputed and rewritten
        if code is None:
            code = self.encode_rgb(read_image(p), source=digest, name=p.stem)
            if cache is not None:
                # a read-only cache only costs a re-encode next time
                with contextlib.suppress(OSError):
                    code.save(cache)
        self._memory[key] = code
        return code

    def encode_rgb(self, rgb: np.ndarray, source: str = "array", name: str = "") -> StyleCode:
        """Encode a uint8 RGB style image at the bank's style size (no caching)."""
        param = next(self.generator.parameters())
        x = rgb_to_tensor(resize_shorter_side(rgb, self.style_size)).to(param.device, param.dtype)
        code = self.generator.style_code(x, source=source, name=name)
        return code.to("cpu", torch.float32)

    def load(self, paths: list[str | os.PathLike[str]]) -> list[StyleEntry]:
        """Encode (or fetch) every style file under ``paths``."""
        return [StyleEntry(p.stem, p, self.code_for_file(p)) for p in list_style_files(paths)]

    def mix(self, paths: list[str | os.PathLike[str]], weights: list[float] | None) -> StyleCode:
        """One code from one style, or a weighted mix of several (weights default to equal)."""
        entries = self.load(paths)
        if len(entries) == 1 and not weights:
            return entries[0].code
        w = weights if weights else [1.0] * len(entries)
        try:
            return interpolate_codes([e.code for e in entries], w)
        except StyleCodeError as exc:
            raise InputError(f"--weights: {exc}") from None
