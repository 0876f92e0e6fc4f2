"""``castrt eval temporal``: end to end on a tiny synthetic clip, and its error handling."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from models.errors import InputError
from models.style_code import StyleCode
from realtime.commands.eval import parse_resolution, perturbed_codes, read_frames

ROOT = Path(__file__).resolve().parents[3]


def write_clip(path: Path, n: int = 5, size: tuple[int, int] = (96, 64)) -> None:
    rng = np.random.default_rng(0)
    base = cv2.resize(
        rng.integers(0, 256, (8, 12, 3), dtype=np.uint8), size, interpolation=cv2.INTER_CUBIC
    )
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    assert vw.isOpened()
    for i in range(n):
        vw.write(np.roll(base, 2 * i, axis=1))
    vw.release()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "realtime.cli", "eval", "temporal", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_parse_resolution() -> None:
    assert parse_resolution("640x360") == (640, 360)
    assert parse_resolution("native") is None
    with pytest.raises(InputError):
        parse_resolution("big")


def test_perturbed_codes_are_seeded_and_sized() -> None:
    code = StyleCode(torch.ones(1, 4, 1, 1), torch.ones(1, 4, 1, 1))
    a = perturbed_codes(code, 3, 0.1, seed=1)
    b = perturbed_codes(code, 3, 0.1, seed=1)
    assert all(torch.equal(x.mean, y.mean) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0].mean, a[1].mean)
    rel = float((a[0].mean - 1).std())
    assert 0.02 < rel < 0.3
    assert perturbed_codes(code, 2, 0.0) == [code, code]


def test_read_frames_rgb_resized_and_limited(tmp_path: Path) -> None:
    clip = tmp_path / "c.avi"
    write_clip(clip, 5)
    frames = read_frames(clip, 3, size=(48, 32))
    assert len(frames) == 3 and frames[0].shape == (32, 48, 3)
    with pytest.raises(InputError, match="not found"):
        read_frames(tmp_path / "missing.avi", 0)
    bad = tmp_path / "bad.avi"
    bad.write_bytes(b"not a video")
    with pytest.raises(InputError):
        read_frames(bad, 0)


@pytest.mark.slow
def test_eval_temporal_end_to_end(tmp_path: Path) -> None:
    clip = tmp_path / "clip.avi"
    write_clip(clip, 5)
    style = tmp_path / "style.png"
    cv2.imwrite(str(style), np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    out = tmp_path / "report.json"
    r = cli(
        str(clip),
        "--style",
        str(style),
        "--untrained",
        "--strategy",
        "flow,stats,keyframe",
        "--flicker",
        "0.1",
        "--json",
        str(out),
        "--threads",
        "1",
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(out.read_text())
    names = [x["strategy"] for x in report["results"]]
    assert names == ["off", "flow", "stats", "keyframe"]
    by = {x["strategy"]: x for x in report["results"]}
    assert by["off"]["e_warp_ratio"] == 1.0
    for x in report["results"]:
        assert {"e_warp", "flicker", "overhead_ms_median", "e_warp_ratio"} <= set(x)
    assert by["flow"]["e_warp_ratio"] < 1.0
    assert 0 < by["keyframe"]["stylized_fraction"] <= 1
    assert report["frames"] == 5 and report["flicker_sigma"] == 0.1


def test_eval_temporal_errors_are_one_line(tmp_path: Path) -> None:
    r = cli(str(tmp_path / "missing.avi"), "--style", "x.png", "--untrained")
    assert r.returncode == 1
    assert r.stderr.strip().count("\n") == 0 and "video not found" in r.stderr
    r = cli(str(tmp_path / "missing.avi"), "--style", "x.png", "--untrained", "--strategy", "blur")
    assert r.returncode == 1 and "unknown temporal strategy" in r.stderr
