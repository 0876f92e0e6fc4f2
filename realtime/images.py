"""Still-image reading and writing at the edges: any common file → uint8 RGB (H, W, 3), and back.

Pillow does the decoding, so CMYK, 16-bit, grayscale, palette and RGBA inputs are converted
correctly (alpha is composited on white), EXIF rotation is applied, and damaged or gigantic
files are refused with an :class:`InputError`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from models.errors import InputError
from models.fileio import atomic_write, first_line

MAX_PIXELS = 64_000_000  # refuse larger (a 16k×4k panorama still fits)
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}
)
_SAVE_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".bmp": "BMP",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def is_image_path(path: Path) -> bool:
    """True for file names with a still-image suffix."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode → 8-bit RGB (alpha over white; 16-bit scaled, not clipped)."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max(initial=0) > 255 or img.mode != "I" else 255.0
        arr8 = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min(initial=0.0)), float(arr.max(initial=1.0))
        scale = 255.0 if hi <= 1.0 and lo >= 0.0 else 255.0 / max(hi - lo, 1e-12)
        arr8 = np.clip((arr - (0.0 if scale == 255.0 else lo)) * scale + 0.5, 0, 255).astype(
            np.uint8
        )
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def read_image(path: str | os.PathLike[str], max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """Read an image file as uint8 RGB (H, W, 3), EXIF orientation applied.

    Raises :class:`InputError` (naming the file) for a missing, empty, non-image, damaged
    or larger-than-``max_pixels`` file.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: file not found")
    if not p.is_file():
        raise InputError(f"{p}: not a file")
    if p.stat().st_size == 0:
        raise InputError(f"{p}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as img:
                w, h = img.size
                if w * h > max_pixels:
                    raise InputError(
                        f"{p}: {w}×{h} image is too large ({w * h / 1e6:.0f} MP; limit {max_pixels / 1e6:.0f} MP)"
                    )
                img.load()
                oriented: Image.Image = ImageOps.exif_transpose(img) or img
                rgb = _to_rgb(oriented)
    except InputError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{p}: image is too large (decompression bomb limit)") from None
    except UnidentifiedImageError:
        raise InputError(f"{p}: not an image (format not recognised)") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(f"{p}: damaged or unreadable image ({first_line(exc)})") from None
    arr = np.asarray(rgb, dtype=np.uint8)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(f"{p}: decoded to an unusable shape {arr.shape}")
    return np.ascontiguousarray(arr)


def write_image(path: str | os.PathLike[str], rgb: np.ndarray, quality: int = 95) -> Path:
    """Write uint8 RGB (H, W, 3) atomically; the format follows the suffix (PNG if unknown)."""
    p = Path(path)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 (H, W, 3), got {rgb.dtype} {rgb.shape}")
    fmt = _SAVE_FORMATS.get(p.suffix.lower())
    if fmt is None:
        raise InputError(
            f"{p}: unsupported output image type {p.suffix or '(none)'}; use .png or .jpg"
        )
    img = Image.fromarray(rgb, mode="RGB")
    kwargs: dict[str, object] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        atomic_write(p, lambda tmp: img.save(tmp, format=fmt, **kwargs))
    except OSError as exc:
        raise InputError(f"{p}: cannot write ({first_line(exc)})") from None
    return p
