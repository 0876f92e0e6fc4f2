"""`castrt stylize` end to end: exact sizes, folders, mixing, bad inputs, checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from realtime.cli import main
from realtime.images import read_image, write_image


@pytest.fixture()
def style(tmp_path: Path) -> Path:
    return write_image(
        tmp_path / "style.png",
        np.random.default_rng(0).integers(0, 256, (48, 40, 3), dtype=np.uint8),
    )


def content(path: Path, w: int, h: int, seed: int = 1) -> Path:
    return write_image(
        path, np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    )


def run(*args: str) -> int:
    return main(["stylize", "--untrained", "--no-cache", "--style-size", "32", *args])


def test_single_image_keeps_its_odd_size(
    tmp_path: Path, style: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = content(tmp_path / "c.png", 37, 21)
    assert run("--style", str(style), str(src), "-o", str(tmp_path / "out.jpg")) == 0
    assert read_image(tmp_path / "out.jpg").shape == (21, 37, 3)
    assert "UNTRAINED" in capsys.readouterr().err


def test_several_inputs_go_to_a_folder_and_failures_continue(
    tmp_path: Path, style: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = content(tmp_path / "a.png", 16, 16)
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    Image.new("CMYK", (9, 11)).save(tmp_path / "cmyk.jpg")
    rc = run(
        "--style",
        str(style),
        str(a),
        str(bad),
        str(tmp_path / "cmyk.jpg"),
        "-o",
        str(tmp_path / "out"),
    )
    assert rc == 1
    err = capsys.readouterr().err
    assert "bad.png: not an image" in err and "1 of 3 input(s) failed" in err
    assert read_image(tmp_path / "out" / "a.png").shape == (16, 16, 3)
    assert read_image(tmp_path / "out" / "cmyk.png").shape == (11, 9, 3)
    assert not (tmp_path / "out" / "bad.png").exists()


def test_mixing_alpha_and_preserve_color(tmp_path: Path, style: Path) -> None:
    style2 = write_image(tmp_path / "s2.png", np.full((32, 32, 3), (250, 10, 10), np.uint8))
    src = content(tmp_path / "c.png", 24, 24)
    outs = {}
    for name, extra in {
        "mix": ["--style", str(style2), "--weights", "0.7,0.3"],
        "alpha0": ["--alpha", "0"],
        "pc": ["--preserve-color"],
    }.items():
        assert (
            run("--style", str(style), *extra, str(src), "-o", str(tmp_path / f"{name}.png")) == 0
        )
        outs[name] = read_image(tmp_path / f"{name}.png")
    assert all(o.shape == (24, 24, 3) for o in outs.values())
    assert not np.array_equal(outs["mix"], outs["alpha0"])


def test_usage_errors_exit_nonzero_with_one_line(
    tmp_path: Path, style: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = content(tmp_path / "c.png", 8, 8)
    out = tmp_path / "o.png"
    out.write_bytes(b"keep")
    assert run("--style", str(style), str(src), "-o", str(out)) == 1
    assert "exists (use --overwrite" in capsys.readouterr().err and out.read_bytes() == b"keep"
    assert main(["stylize", "--style", str(style), str(src), "-o", str(tmp_path / "n.png")]) == 1
    assert "no checkpoint given" in capsys.readouterr().err
    assert (
        run(
            "--style",
            str(style),
            "--style",
            str(style),
            "--weights",
            "1,x",
            str(src),
            "-o",
            str(tmp_path / "w.png"),
        )
        == 1
    )
    assert "--weights" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        run("--style", str(style), "--alpha", "2", str(src), "-o", str(tmp_path / "a.png"))
    assert e.value.code == 2


def test_official_checkpoint_directory(upstream_dir: Path, tmp_path: Path, style: Path) -> None:
    src = content(tmp_path / "c.png", 30, 18)
    rc = main(
        [
            "stylize",
            "--checkpoint",
            str(upstream_dir),
            "--no-cache",
            "--style",
            str(style),
            str(src),
            "-o",
            str(tmp_path / "o.png"),
        ]
    )
    assert rc == 0 and read_image(tmp_path / "o.png").shape == (18, 30, 3)


def test_tiny_and_16_bit_inputs(tmp_path: Path, style: Path) -> None:
    Image.new("RGB", (1, 1), (9, 99, 199)).save(tmp_path / "one.png")
    Image.fromarray(np.full((5, 6), 40000, np.uint16)).save(tmp_path / "deep.png")
    rc = run(
        "--style",
        str(style),
        str(tmp_path / "one.png"),
        str(tmp_path / "deep.png"),
        "-o",
        str(tmp_path / "out"),
    )
    assert rc == 0
    assert read_image(tmp_path / "out" / "one.png").shape == (1, 1, 3)
    assert read_image(tmp_path / "out" / "deep.png").shape == (5, 6, 3)
