"""Optical flow helpers: DIS conventions, occlusion masks, cv2 vs torch warping."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.errors import InputError
from realtime.flow import (
    DisFlow,
    ReducedFlow,
    fb_consistent,
    flow_to_tensor,
    inside_mask,
    motion_boundaries,
    reliable_mask,
    resize_flow,
    warp,
    warp_torch,
)
from tests.realtime.textures import shifted, textured


def test_dis_follows_the_opencv_convention() -> None:
    a = textured()
    b = shifted(a, 3, 2)  # content moves right/down by (3, 2)
    flow = DisFlow("medium")(a, b)  # a(x) ≈ b(x + flow)
    inner = flow[16:-16, 16:-16]
    assert np.allclose(np.median(inner[..., 0]), 3, atol=0.3)
    assert np.allclose(np.median(inner[..., 1]), 2, atol=0.3)
    back = warp(b, flow)
    err = np.abs(back.astype(float) - a.astype(float))[16:-16, 16:-16].mean()
    assert err < 3.0


def test_warp_keeps_dtype_and_shape() -> None:
    img = textured()
    flow = np.zeros((*img.shape[:2], 2), np.float32)
    assert np.array_equal(warp(img, flow), img)
    assert warp(img.astype(np.float32), flow).dtype == np.float32


def test_forward_backward_check() -> None:
    d = np.zeros((20, 30, 2), np.float32)
    d[..., 0] = 2.0
    assert fb_consistent(d, -d).all()
    assert not fb_consistent(d, d).any()


def test_motion_boundaries_mark_flow_edges_only() -> None:
    f = np.zeros((20, 30, 2), np.float32)
    f[:, 15:, 0] = 5.0
    mb = motion_boundaries(f)
    assert mb[:, 14:16].all()
    assert not mb[:, :13].any() and not mb[:, 17:].any()


def test_inside_mask_and_reliable_mask() -> None:
    f = np.zeros((10, 10, 2), np.float32)
    f[..., 0] = 3.0  # right part leaves the frame
    m = inside_mask(f)
    assert m[:, :7].all() and not m[:, 7:].any()
    assert (reliable_mask(f, -f) == m).all()


def test_resize_flow_scales_vectors() -> None:
    f = np.ones((10, 20, 2), np.float32)
    big = resize_flow(f, (20, 40))
    assert big.shape == (20, 40, 2)
    assert np.allclose(big, 2.0)


def test_warp_torch_matches_cv2() -> None:
    img = textured().astype(np.float32)
    rng = np.random.default_rng(1)
    flow = (rng.standard_normal((96, 128, 2)) * 2).astype(np.float32)
    ref = warp(img, flow)
    t = torch.from_numpy(img).permute(2, 0, 1)[None]
    out = warp_torch(t, flow_to_tensor(flow))[0].permute(1, 2, 0).numpy()
    assert np.abs(out - ref)[4:-4, 4:-4].max() < 0.1


def test_reduced_flow_recovers_a_pan_at_full_size() -> None:
    a = textured(180, 320)
    b = shifted(a, 4, 0)
    rf = ReducedFlow(scale=0.5)
    res = rf(rf.small_gray(b), rf.small_gray(a), b.shape[:2])  # cur=b → prev=a
    assert res.flow.shape == (180, 320, 2) and res.mask.shape == (180, 320)
    inner = res.flow[30:-30, 30:-30]
    assert abs(float(np.median(inner[..., 0])) + 4) < 0.5
    assert res.mask[30:-30, 30:-30].mean() > 0.8


def test_bad_preset_and_scale_are_refused() -> None:
    with pytest.raises(InputError):
        DisFlow("slowest")
    with pytest.raises(InputError):
        ReducedFlow(scale=0.0)


def test_flat_regions_are_trusted_despite_noisy_flow() -> None:
    from realtime.flow import flat_mask

    img = np.full((60, 80), 128, np.uint8)
    img[:, 40:] = np.random.default_rng(0).integers(0, 256, (60, 40), dtype=np.uint8)
    m = flat_mask(img, 0.5)
    assert m[:, :30].all() and not m[:, 50:].any()
    flat = np.full((90, 160, 3), 100, np.uint8)
    rf = ReducedFlow(scale=0.5)
    res = rf(rf.small_gray(flat), rf.small_gray(flat), flat.shape[:2])
    assert res.mask[5:-5, 5:-5].min() > 0.99
