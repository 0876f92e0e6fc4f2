"""Image reading converts every common mode to uint8 RGB or refuses with a clear message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from models.errors import InputError
from realtime.images import read_image, write_image


def test_rgb_png_round_trip(tmp_path: Path) -> None:
    arr = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    write_image(tmp_path / "a.png", arr)
    assert np.array_equal(read_image(tmp_path / "a.png"), arr)


def test_channel_order_is_rgb(tmp_path: Path) -> None:
    Image.new("RGB", (4, 4), (255, 0, 0)).save(tmp_path / "red.png")
    assert read_image(tmp_path / "red.png")[0, 0].tolist() == [255, 0, 0]


def test_cmyk_jpeg_is_converted(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 6), (0, 255, 255, 0)).save(tmp_path / "c.jpg")  # pure red in CMYK
    rgb = read_image(tmp_path / "c.jpg")
    assert rgb.shape == (6, 8, 3)
    r, g, b = rgb[3, 4].tolist()
    assert r > 200 and g < 60 and b < 60


def test_16_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    arr = np.full((4, 4), 32768, dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    rgb = read_image(tmp_path / "g16.png")
    assert rgb.shape == (4, 4, 3) and abs(int(rgb[0, 0, 0]) - 128) <= 1


def test_grayscale_palette_and_rgba(tmp_path: Path) -> None:
    Image.new("L", (3, 2), 77).save(tmp_path / "l.png")
    assert read_image(tmp_path / "l.png")[0, 0].tolist() == [77, 77, 77]
    Image.new("RGB", (3, 2), (10, 200, 30)).convert("P").save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").shape == (2, 3, 3)
    Image.new("RGBA", (3, 2), (255, 0, 0, 0)).save(tmp_path / "t.png")  # fully transparent red
    assert read_image(tmp_path / "t.png")[0, 0].tolist() == [255, 255, 255]  # composited on white


def test_exif_rotation_is_applied(tmp_path: Path) -> None:
    img = Image.new("RGB", (8, 4), (0, 0, 255))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° CW on display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert read_image(tmp_path / "r.jpg").shape == (8, 4, 3)


def test_one_pixel_image(tmp_path: Path) -> None:
    Image.new("RGB", (1, 1), (1, 2, 3)).save(tmp_path / "one.png")
    assert read_image(tmp_path / "one.png").tolist() == [[[1, 2, 3]]]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file"),
        (b"hello, not an image", "not an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image"),
    ],
)
def test_bad_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    p = tmp_path / "bad.png"
    p.write_bytes(content)
    with pytest.raises(InputError, match=message):
        read_image(p)


def test_damaged_image_is_refused(tmp_path: Path) -> None:
    arr = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="damaged or unreadable image"):
        read_image(tmp_path / "cut.png")


def test_missing_and_gigantic(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="file not found"):
        read_image(tmp_path / "none.png")
    Image.new("L", (300, 300)).save(tmp_path / "big.png")
    with pytest.raises(InputError, match="too large"):
        read_image(tmp_path / "big.png", max_pixels=10_000)


def test_write_refuses_unknown_suffix(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unsupported output image type"):
        write_image(tmp_path / "x.xyz", np.zeros((2, 2, 3), np.uint8))
