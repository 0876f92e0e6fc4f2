"""Warping error, flicker and fidelity measurements."""

from __future__ import annotations

import math

import numpy as np

from realtime.metrics import (
    TemporalScore,
    input_flows,
    luminance,
    masked_sse,
    masked_ssim,
    psnr_from_mse,
    ssim_map,
)
from tests.realtime.textures import shifted, textured


def pan(n: int = 5, step: int = 3) -> list[np.ndarray]:
    base = textured(96, 128)
    return [shifted(base, step * i, 0) for i in range(n)]


def score(
    frames: list[np.ndarray], outs: list[np.ndarray], refs: list[np.ndarray] | None = None
) -> dict[str, float]:
    flows = input_flows(frames)
    s = TemporalScore()
    for i, (f, o) in enumerate(zip(frames, outs, strict=True)):
        s.update(f, o, flows[i], refs[i] if refs else None)
    return s.result()


def test_luminance_and_psnr() -> None:
    assert luminance(np.full((4, 4, 3), 100, np.uint8)) == 100.0
    assert math.isinf(psnr_from_mse(0.0))
    assert abs(psnr_from_mse(1e-3) - 30.0) < 1e-9


def test_masked_sse_counts_only_masked_pixels() -> None:
    a = np.zeros((2, 2, 3), np.float32)
    b = np.ones((2, 2, 3), np.float32)
    m = np.array([[True, False], [False, False]])
    assert masked_sse(a, b, m) == (3.0, 3.0)


def test_ssim_identical_is_one_and_noise_is_lower() -> None:
    a = textured()
    assert np.allclose(ssim_map(a, a), 1.0, atol=1e-4)
    noisy = np.clip(
        a.astype(int) + np.random.default_rng(0).integers(-40, 40, a.shape), 0, 255
    ).astype(np.uint8)
    assert masked_ssim(a, noisy, np.ones(a.shape[:2], bool)) < 0.9


def test_input_flows_one_per_pair() -> None:
    frames = pan(4)
    flows = input_flows(frames)
    assert flows[0] is None and all(f is not None for f in flows[1:])
    assert len(flows) == 4


def test_consistent_motion_has_low_warping_error_and_no_flicker() -> None:
    frames = pan()
    res = score(frames, frames, frames)
    assert res["e_warp"] < 2e-3
    assert res["flicker"] == 0.0
    assert math.isinf(res["psnr"]) and res["ssim"] > 0.999


def test_brightness_jitter_raises_e_warp_and_flicker() -> None:
    frames = pan()
    rng = np.random.default_rng(0)
    jitter = [
        np.clip(f.astype(int) + int(rng.integers(-30, 30)), 0, 255).astype(np.uint8) for f in frames
    ]
    clean = score(frames, frames)
    noisy = score(frames, jitter, frames)
    assert noisy["e_warp"] > 5 * clean["e_warp"]
    assert noisy["flicker"] > 5.0
    assert noisy["psnr"] < 30.0
