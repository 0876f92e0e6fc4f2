"""Temporal strategies: behaviour on synthetic streams with a fake and a real (tiny) engine."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from models.errors import InputError
from models.generator import CASTGenerator
from models.style_code import StyleCode
from realtime.engine import StylizeEngine
from realtime.metrics import TemporalScore, input_flows
from realtime.temporal import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    Keyframe,
    NumpyBlend,
    SceneCutDetector,
    StatsStylizer,
    TemporalConfig,
    TorchBlend,
    make_strategy,
)
from tests.realtime.textures import shifted, textured


def code(value: float = 0.0) -> StyleCode:
    return StyleCode(torch.full((1, 8, 1, 1), value), torch.ones(1, 8, 1, 1))


class FakeEngine:
    """Stylization = the frame plus a global offset from the code mean (controlled flicker)."""

    def __init__(self, delay: float = 0.0) -> None:
        self.device = torch.device("cpu")
        self.content_stats_hook = None
        self.calls = 0
        self.delay = delay

    def process(
        self, frame: np.ndarray, code: StyleCode, alpha: float = 1.0, preserve_color: bool = False
    ) -> np.ndarray:
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        offset = float(code.mean.mean()) * 40.0
        return np.clip(frame.astype(np.float32) * 0.8 + 20 + offset, 0, 255).astype(np.uint8)


def run(name: str, frames: list[np.ndarray], codes: list[StyleCode], engine=None, config=None):  # type: ignore[no-untyped-def]
    eng = engine or FakeEngine()
    s = make_strategy(name, config)
    return [s.step(f, eng, c, 1.0) for f, c in zip(frames, codes, strict=True)], s


def jitter_codes(n: int, size: float = 0.3, seed: int = 0) -> list[StyleCode]:
    """Codes around mean 1 with a relative per-frame perturbation (below a style switch)."""
    rng = np.random.default_rng(seed)
    return [code(1.0 + float(rng.standard_normal()) * size) for _ in range(n)]


def e_warp(
    frames: list[np.ndarray], outs: list[np.ndarray], refs: list[np.ndarray] | None = None
) -> dict[str, float]:
    flows = input_flows(frames)
    s = TemporalScore(with_ssim=False)
    for i, (f, o) in enumerate(zip(frames, outs, strict=True)):
        s.update(f, o, flows[i], refs[i] if refs else None)
    return s.result()


def test_every_listed_strategy_builds_and_steps() -> None:
    frames = [shifted(textured(), 2 * i) for i in range(4)]
    for name in STRATEGIES:
        outs, s = run(name, frames, [code()] * 4)
        assert s.name == name
        assert all(o.dtype == np.uint8 and o.shape == frames[0].shape for o in outs)
        s.reset()
    assert DEFAULT_STRATEGY in STRATEGIES


@pytest.mark.parametrize("bad", ["nope", "flow+ema", "stats+stats", "keyframe+stats", ""])
def test_unknown_strategies_are_refused(bad: str) -> None:
    with pytest.raises(InputError, match="unknown temporal strategy"):
        make_strategy(bad)


def test_names_are_canonical() -> None:
    assert make_strategy("stats+flow").name == "flow+stats"
    assert make_strategy(" EMA ").name == "ema"


def test_config_validation() -> None:
    with pytest.raises(InputError):
        TemporalConfig(weight=1.0)
    with pytest.raises(InputError):
        TemporalConfig(flow_scale=0)
    with pytest.raises(InputError):
        TemporalConfig(interval=0)


def test_off_is_the_engine_output() -> None:
    frames = [textured(seed=i) for i in range(3)]
    codes = jitter_codes(3)
    eng = FakeEngine()
    outs, _ = run("off", frames, codes, eng)
    for f, c, o in zip(frames, codes, outs, strict=True):
        assert np.array_equal(o, eng.process(f, c))


def test_ema_removes_global_flicker_but_smears_a_pan() -> None:
    frames = [shifted(textured(120, 160), 2 * i) for i in range(10)]
    codes = jitter_codes(10)
    off, _ = run("off", frames, codes)
    outs, _ = run("ema", frames, codes)
    res = e_warp(frames, outs, off)
    assert res["flicker"] < 0.5 * e_warp(frames, off)["flicker"]
    assert res["psnr"] < 25.0  # ghosting: far from the per-frame output


@pytest.mark.parametrize("name", ["flow", "stats", "flow+stats"])
def test_smoothing_removes_flicker_it_did_not_cause_on_a_pan(name: str) -> None:
    frames = [shifted(textured(120, 160), 2 * i) for i in range(10)]
    codes = jitter_codes(10)
    off, _ = run("off", frames, codes)
    outs, _ = run(name, frames, codes)
    base, res = e_warp(frames, off), e_warp(frames, outs, off)
    assert res["e_warp"] < 0.6 * base["e_warp"], (name, res, base)
    assert res["flicker"] < base["flicker"]


def test_adaptive_removes_flicker_on_a_static_scene() -> None:
    frames = [textured(120, 160)] * 8
    codes = jitter_codes(8)
    off, _ = run("off", frames, codes)
    outs, _ = run("adaptive", frames, codes)
    assert e_warp(frames, outs)["e_warp"] < 0.5 * e_warp(frames, off)["e_warp"]


def test_adaptive_follows_moving_regions_and_smooths_static_ones() -> None:
    base = textured(96, 128)
    moved = base.copy()
    moved[:, 64:] = textured(96, 64, seed=5)  # right half changes, left half static
    eng = FakeEngine()
    s = make_strategy("adaptive")
    s.step(base, eng, code(0.0), 1.0)
    out = s.step(moved, eng, code(0.5), 1.0)  # global offset jumps by 20 levels
    fresh = eng.process(moved, code(0.5)).astype(float)
    diff = np.abs(out.astype(float) - fresh)
    assert diff[:, 80:].mean() < 3.0  # moving region: the new frame
    assert diff[:, :48].mean() > 10.0  # static region: mostly the past


def test_flow_follows_motion_without_ghosting() -> None:
    frames = [shifted(textured(120, 160), 4 * i) for i in range(6)]
    codes = [code()] * 6  # no flicker: the smoothed output must stay the per-frame output
    off, _ = run("off", frames, codes)
    ema, _ = run("ema", frames, codes)
    flow, _ = run("flow", frames, codes)
    fid_flow = e_warp(frames, flow, off)["psnr"]
    fid_ema = e_warp(frames, ema, off)["psnr"]
    assert fid_flow > 30.0 and fid_flow > fid_ema + 5.0


def test_flow_parallel_matches_serial() -> None:
    frames = [shifted(textured(), 3 * i) for i in range(4)]
    codes = jitter_codes(4)
    serial, _ = run("flow", frames, codes)
    parallel, _ = run("flow", frames, codes, config=TemporalConfig(flow_parallel=True))
    for a, b in zip(serial, parallel, strict=True):
        assert np.array_equal(a, b)


def test_torch_blend_matches_numpy_blend() -> None:
    rng = np.random.default_rng(0)
    prev = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    cur = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    w = rng.uniform(0, 1, (40, 60)).astype(np.float32)
    flow = rng.normal(0, 1.5, (40, 60, 2)).astype(np.float32)
    a = NumpyBlend().blend(prev, cur, w, flow)
    b = TorchBlend("cpu").blend(prev, cur, w, flow)
    assert a.dtype == b.dtype == np.uint8
    d = np.abs(a.astype(int) - b)[3:-3, 3:-3]
    # OpenCV's fixed-point remap interpolates at 1/32 pixel: a few levels on pure noise
    assert d.mean() < 0.5 and d.max() <= 8


def test_scene_cut_detector() -> None:
    det = SceneCutDetector(0.5)
    a = textured(seed=0)
    assert not det(a)
    assert not det(shifted(a, 5))
    assert det(255 - textured(seed=9) // 4)
    assert det(np.zeros((50, 50, 3), np.uint8))  # size change


def test_scene_cut_resets_ema() -> None:
    eng = FakeEngine()
    s = make_strategy("ema")
    s.step(textured(seed=0), eng, code(), 1.0)
    new = (255 - textured(seed=3) // 3).astype(np.uint8)
    out = s.step(new, eng, code(), 1.0)
    assert np.array_equal(out, eng.process(new, code()))


def test_stats_hook_is_installed_only_during_the_call(tiny_gen: CASTGenerator) -> None:
    engine = StylizeEngine(tiny_gen)
    sentinel = object()
    engine.content_stats_hook = sentinel  # type: ignore[assignment]
    seen = []
    orig = engine.process

    def spy(*a, **k):  # type: ignore[no-untyped-def]
        seen.append(engine.content_stats_hook)
        engine.content_stats_hook = None
        return orig(*a, **k)

    engine.process = spy  # type: ignore[method-assign]
    st = StatsStylizer()
    st.stylize(
        textured(32, 32),
        engine,
        StyleCode(torch.zeros(1, 512, 1, 1), torch.ones(1, 512, 1, 1)),
        1.0,
    )
    assert seen[0] == st._hook
    assert engine.content_stats_hook is None or engine.content_stats_hook is sentinel


def test_stats_smooths_content_and_style_statistics_on_the_real_engine(
    tiny_gen: CASTGenerator,
) -> None:
    engine = StylizeEngine(tiny_gen)
    g = torch.Generator().manual_seed(0)
    base = StyleCode(
        torch.rand(1, 512, 1, 1, generator=g), torch.rand(1, 512, 1, 1, generator=g) + 0.5
    )
    codes = [
        StyleCode(base.mean * (1 + 0.2 * torch.randn(base.mean.shape, generator=g)), base.std)
        for _ in range(5)
    ]
    frames = [textured(32, 48)] * 5
    off, _ = run("off", frames, codes, engine)
    stats, _ = run("stats", frames, codes, engine)
    d_off = np.mean(
        [np.abs(a.astype(float) - b).mean() for a, b in zip(off[1:], off[:-1], strict=True)]
    )
    d_st = np.mean(
        [np.abs(a.astype(float) - b).mean() for a, b in zip(stats[1:], stats[:-1], strict=True)]
    )
    assert d_st < 0.6 * d_off
    assert engine.content_stats_hook is None


def test_stats_follows_a_real_style_switch() -> None:
    st = StatsStylizer(weight=0.9)
    a, b = code(1.0), code(-3.0)
    st._smoothed_code(a)
    switched = st._smoothed_code(b)
    assert torch.equal(switched.mean, b.mean)
    near = st._smoothed_code(code(-3.1))
    assert not torch.equal(near.mean, code(-3.1).mean)


def test_keyframe_interval_and_rate() -> None:
    frames = [shifted(textured(120, 160), 2 * i) for i in range(9)]
    eng = FakeEngine()
    outs, s = run("keyframe", frames, [code()] * 9, eng, TemporalConfig(interval=3))
    assert isinstance(s, Keyframe)
    assert eng.calls == 3  # frames 0, 3, 6
    st = s.stats()
    assert st["frames"] == 9 and st["stylized"] == 3 and abs(st["stylized_fraction"] - 1 / 3) < 1e-9
    ref = eng.process(frames[1], code()).astype(float)
    assert np.abs(outs[1].astype(float) - ref)[10:-10, 10:-10].mean() < 4.0


def test_keyframe_restylizes_when_propagation_fails() -> None:
    eng = FakeEngine()
    s = make_strategy("keyframe", TemporalConfig(interval=10, scene_cut=0.0))
    s.step(textured(seed=0), eng, code(), 1.0)
    s.step(textured(seed=7), eng, code(), 1.0)  # unrelated content: flow cannot explain it
    assert eng.calls == 2


def test_keyframe_target_fps_widens_the_interval_for_a_slow_engine() -> None:
    frames = [shifted(textured(), i) for i in range(8)]
    eng = FakeEngine(delay=0.03)
    _, s = run(
        "keyframe",
        frames,
        [code()] * 8,
        eng,
        TemporalConfig(interval=1, target_fps=60.0, max_interval=6),
    )
    assert isinstance(s, Keyframe)
    assert s.interval > 1 and eng.calls < 8


def test_keyframe_async_propagates_while_the_engine_works() -> None:
    frames = [shifted(textured(), i) for i in range(6)]
    eng = FakeEngine(delay=0.05)
    outs, s = run("keyframe", frames, [code()] * 6, eng, TemporalConfig(keyframe_async=True))
    assert len(outs) == 6 and all(o.shape == frames[0].shape for o in outs)
    time.sleep(0.2)
    assert isinstance(s, Keyframe)
    assert s.stats()["stylized"] >= 1 and eng.calls >= 2


def test_the_yaml_preset_holds_the_defaults() -> None:
    from pathlib import Path

    from realtime.config import load_config

    preset = Path(__file__).resolve().parents[2] / "configs" / "temporal.yaml"
    assert load_config(TemporalConfig, preset) == TemporalConfig()
