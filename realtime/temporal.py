"""Temporal-consistency strategies behind one interface.

A strategy wraps the engine call for each frame of one stream::

    out = strategy.step(frame, engine, code, alpha)   # uint8 RGB in, uint8 RGB out

so it may stylize, smooth, warp or skip stylization (keyframe mode). ``reset()`` forgets the
past (scene cut, style switch, seek). ``make_strategy(name, config)`` builds one by name.

Strategies (see docs/temporal.md for measurements):

* ``off`` — frame by frame.
* ``ema`` — exponential moving average of the output (removes flicker, smears motion).
* ``adaptive`` — EMA whose per-pixel weight falls where consecutive *input* frames differ, so
  moving regions follow the new frame.
* ``flow`` — DIS optical flow between consecutive input frames (reduced scale, optionally on a
  worker thread in parallel with the engine), previous *output* warped onto the current frame,
  occluded/unreliable pixels dropped by a forward–backward check, then blended.
* ``stats`` — smooths the AdaIN statistics across frames: the relu4_1 content mean/std through
  ``engine.content_stats_hook`` and the style code's mean/std (stops global colour pumping).
* combinations ``ema+stats``, ``adaptive+stats``, ``flow+stats``.
* ``keyframe`` — stylize every Nth frame (or adaptively to hold a target output fps, or on a
  worker thread) and propagate the last stylized frame by flow in between.

Every strategy except ``off`` resets itself on a detected scene cut or a frame-size change.
"""

from __future__ import annotations

import dataclasses
import math
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np
import torch
from torch import Tensor

from models.errors import InputError
from models.style_code import StyleCode
from realtime.engine import StylizeEngine
from realtime.flow import FlowResult, ReducedFlow, flow_to_tensor, pixel_grid, warp_torch


class TemporalStrategy(Protocol):
    """Per-stream temporal smoothing around the engine."""

    name: str

    def reset(self) -> None: ...

    def step(
        self, frame: np.ndarray, engine: StylizeEngine, code: StyleCode, alpha: float
    ) -> np.ndarray: ...


@dataclass(frozen=True)
class TemporalConfig:
    """Knobs of every strategy (defaults are the measured choices of bench/results/temporal.md).

    ``weight``: how much of the past ``ema``/``adaptive`` keep (0 = none, →1 = frozen);
    ``flow_weight``: the same for the warped past of ``flow`` where it is trusted.
    ``adaptive_tau``: input difference (grey levels) at which ``adaptive`` trusts the past e⁻¹.
    ``flow_scale``: resolution factor for DIS; ``flow_preset``: ultrafast | fast | medium;
    ``flow_flat``: gradient (grey levels/px) below which a region counts as flat and its flow is
    trusted without the consistency test (0: never).
    ``flow_parallel``: compute flow on a worker thread while the engine runs.
    ``stats_weight``: EMA weight of the AdaIN statistics; ``stats_style``: also smooth the style
    code (a change larger than ``style_switch`` relative L2 is a style switch: no smoothing).
    ``scene_cut``: Bhattacharyya distance of colour histograms that counts as a cut (0: off).
    Keyframe mode: ``interval`` (stylize every Nth frame), ``target_fps`` (> 0: choose the
    interval to hold this output rate), ``max_interval``, ``min_reliable`` (restylize when less
    of the frame can be propagated), ``keyframe_async`` (stylize keyframes on a worker thread;
    every frame is propagated from the newest finished keyframe).
    """

    weight: float = 0.8
    flow_weight: float = 0.6
    adaptive_tau: float = 12.0
    flow_scale: float = 0.5
    flow_preset: str = "ultrafast"
    flow_flat: float = 0.5
    flow_parallel: bool = False
    stats_weight: float = 0.8
    stats_style: bool = True
    style_switch: float = 0.5
    scene_cut: float = 0.5
    interval: int = 4
    target_fps: float = 0.0
    max_interval: int = 30
    min_reliable: float = 0.5
    keyframe_async: bool = False

    def __post_init__(self) -> None:
        for name in ("weight", "flow_weight", "stats_weight"):
            v = getattr(self, name)
            if not 0.0 <= v < 1.0:
                raise InputError(f"temporal {name} must be in [0, 1), got {v}")
        if not 0.0 < self.flow_scale <= 1.0:
            raise InputError(f"temporal flow_scale must be in (0, 1], got {self.flow_scale}")
        if self.interval < 1 or self.max_interval < 1:
            raise InputError("temporal interval and max_interval must be >= 1")
        if self.target_fps < 0:
            raise InputError(f"temporal target_fps must be >= 0, got {self.target_fps}")


# ------------------------------------------------------------------------ scene cuts


class SceneCutDetector:
    """Flags a frame whose colour histogram is far from the previous frame's (or whose size differs)."""

    def __init__(self, threshold: float = 0.5, bins: int = 32) -> None:
        self.threshold = threshold
        self.bins = bins
        self._prev: np.ndarray | None = None
        self._shape: tuple[int, ...] = ()

    def reset(self) -> None:
        self._prev = None

    def _hist(self, frame: np.ndarray) -> np.ndarray:
        """Per-channel histograms of a 64×36 thumbnail, concatenated and normalised to sum 1."""
        thumb = cv2.resize(frame, (64, 36), interpolation=cv2.INTER_AREA)
        h = np.concatenate(
            [cv2.calcHist([thumb], [c], None, [self.bins], [0, 256]) for c in range(3)]
        )
        return (h / max(float(h.sum()), 1.0)).astype(np.float32)

    def __call__(self, frame: np.ndarray) -> bool:
        """True if ``frame`` starts a new shot (never for the first frame)."""
        if frame.shape != self._shape:
            cut = self._prev is not None
            self._shape = frame.shape
            self._prev = self._hist(frame) if self.threshold > 0 else None
            return cut
        if self.threshold <= 0:
            return False
        h = self._hist(frame)
        cut = (
            self._prev is not None
            and cv2.compareHist(self._prev, h, cv2.HISTCMP_BHATTACHARYYA) > self.threshold
        )
        self._prev = h
        return bool(cut)


# ------------------------------------------------------------------------ stylizers


class PlainStylizer:
    """The engine as is."""

    def reset(self) -> None:
        pass

    def stylize(
        self, frame: np.ndarray, engine: StylizeEngine, code: StyleCode, alpha: float
    ) -> np.ndarray:
        return engine.process(frame, code, alpha)


def ema_tensor(prev: Tensor | None, cur: Tensor, weight: float) -> Tensor:
    """``weight·prev + (1 − weight)·cur`` (``cur`` when there is no compatible past)."""
    if prev is None or prev.shape != cur.shape or prev.device != cur.device:
        return cur.detach().clone()
    return prev.to(cur.dtype) * weight + cur.detach() * (1.0 - weight)


class StatsStylizer:
    """Smooths the AdaIN statistics across frames: content stats via the engine hook, style code."""

    def __init__(
        self, weight: float = 0.8, smooth_style: bool = True, style_switch: float = 0.5
    ) -> None:
        self.weight = weight
        self.smooth_style = smooth_style
        self.style_switch = style_switch
        self.reset()

    def reset(self) -> None:
        self._c_mean: Tensor | None = None
        self._c_std: Tensor | None = None
        self._s_mean: Tensor | None = None
        self._s_std: Tensor | None = None

    def _hook(self, mean: Tensor, std: Tensor) -> tuple[Tensor, Tensor]:
        # (B, 512, 1, 1) each
        self._c_mean = ema_tensor(self._c_mean, mean, self.weight)
        self._c_std = ema_tensor(self._c_std, std, self.weight)
        return self._c_mean, self._c_std

    def _smoothed_code(self, code: StyleCode) -> StyleCode:
        if not self.smooth_style:
            return code
        m, s = code.mean, code.std
        prev = self._s_mean
        if prev is not None and prev.shape == m.shape:
            change = float((m - prev).norm() / (prev.norm() + 1e-8))
            if change > self.style_switch:  # a real style switch: follow it at once
                self._s_mean = self._s_std = None
        self._s_mean = ema_tensor(self._s_mean, m, self.weight)
        self._s_std = ema_tensor(self._s_std, s, self.weight)
        return dataclasses.replace(code, mean=self._s_mean, std=self._s_std)

    def stylize(
        self, frame: np.ndarray, engine: StylizeEngine, code: StyleCode, alpha: float
    ) -> np.ndarray:
        previous = engine.content_stats_hook
        engine.content_stats_hook = self._hook
        try:
            return engine.process(frame, self._smoothed_code(code), alpha)
        finally:
            engine.content_stats_hook = previous


# ------------------------------------------------------------------------ blending backends


class NumpyBlend:
    """Host-side warp and blend with OpenCV on uint8 frames.

    uint8 state and fixed-point remap maps: about 2.5× faster than float32 on this CPU; the
    rounding costs at most ``0.5/(1−w)`` grey levels of lag on a static pixel.
    """

    def __init__(self) -> None:
        self._grid: tuple[np.ndarray, np.ndarray] | None = None

    def warp(self, image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """``image`` resampled at ``x + flow(x)`` (bilinear, border replicated)."""
        h, w = flow.shape[:2]
        if self._grid is None or self._grid[0].shape != (h, w):
            self._grid = pixel_grid(h, w)
        gx, gy = self._grid
        m1, m2 = cv2.convertMaps(gx + flow[..., 0], gy + flow[..., 1], cv2.CV_16SC2)
        return np.asarray(
            cv2.remap(image, m1, m2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        )

    def blend(
        self, prev: np.ndarray, cur: np.ndarray, weight: np.ndarray, flow: np.ndarray | None
    ) -> np.ndarray:
        """``cur + weight·(warp(prev, flow) − cur)``; prev/cur uint8 (H, W, 3), weight (H, W)."""
        past = self.warp(prev, flow) if flow is not None else prev
        return np.asarray(cv2.blendLinear(past, cur, weight, 1.0 - weight))


class TorchBlend:
    """Device-side warp (kornia remap) and blend; used when the engine runs on CUDA.

    The engine still returns host frames, so this uploads them; once the engine keeps frames on
    the device (``engine.upload``/``stylize_tensor``) only this adapter changes.
    """

    def __init__(self, device: torch.device | str) -> None:
        self.device = torch.device(device)

    def blend(
        self, prev: np.ndarray, cur: np.ndarray, weight: np.ndarray, flow: np.ndarray | None
    ) -> np.ndarray:
        """Same contract as :meth:`NumpyBlend.blend` (uint8 in and out)."""

        def up(a: np.ndarray) -> Tensor:  # (H, W, 3) uint8 → (1, 3, H, W) float
            return torch.from_numpy(a).to(self.device).permute(2, 0, 1).unsqueeze(0).float()

        p, c = up(prev), up(cur)
        w = torch.from_numpy(weight).to(self.device)[None, None]  # (1, 1, H, W)
        if flow is not None:
            p = warp_torch(p, flow_to_tensor(flow, self.device))
        out = (c + w * (p - c)).round_().clamp_(0, 255).to(torch.uint8)
        return out[0].permute(1, 2, 0).cpu().numpy()


def blend_backend(engine: StylizeEngine) -> NumpyBlend | TorchBlend:
    """Where to warp and blend: on the engine's device when it is a GPU, else on the host."""
    dev = getattr(engine, "device", torch.device("cpu"))
    return TorchBlend(dev) if torch.device(dev).type == "cuda" else NumpyBlend()


# ------------------------------------------------------------------------ output filters


class OutputFilter(Protocol):
    """Post-processes the stylized frame using the past; ``begin`` may start work early."""

    def reset(self) -> None: ...

    def begin(self, frame: np.ndarray) -> None: ...

    def finish(self, stylized: np.ndarray, engine: StylizeEngine) -> np.ndarray: ...


class EmaFilter:
    """``y = w·y_prev + (1 − w)·x`` everywhere."""

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self._prev: np.ndarray | None = None

    def reset(self) -> None:
        self._prev = None

    def begin(self, frame: np.ndarray) -> None:
        pass

    def finish(self, stylized: np.ndarray, engine: StylizeEngine) -> np.ndarray:
        out = stylized
        if self._prev is not None and self._prev.shape == out.shape:
            out = np.asarray(cv2.addWeighted(self._prev, self.weight, out, 1.0 - self.weight, 0.0))
        self._prev = out
        return out


class AdaptiveFilter:
    """EMA whose per-pixel weight decays with the local difference of consecutive inputs."""

    def __init__(self, weight: float, tau: float, scale: float = 0.5) -> None:
        self.weight = weight
        self.tau = tau
        self.scale = scale
        self._flow = ReducedFlow(scale)  # only its grey downscaling is used
        self._backend: NumpyBlend | TorchBlend | None = None
        self.reset()

    def reset(self) -> None:
        self._prev: np.ndarray | None = None
        self._prev_small: np.ndarray | None = None
        self._w: np.ndarray | None = None

    def begin(self, frame: np.ndarray) -> None:
        small = cv2.GaussianBlur(self._flow.small_gray(frame), (5, 5), 0)
        self._w = None
        if self._prev_small is not None and self._prev_small.shape == small.shape:
            diff = cv2.absdiff(small, self._prev_small).astype(np.float32)
            d = np.asarray(
                cv2.dilate(diff, np.ones((5, 5), np.uint8))
            )  # moving edges: follow the new frame
            w = self.weight * np.exp(-((d / self.tau) ** 2))
            h, wd = frame.shape[:2]
            self._w = cv2.resize(w, (wd, h), interpolation=cv2.INTER_LINEAR)
        self._prev_small = small

    def finish(self, stylized: np.ndarray, engine: StylizeEngine) -> np.ndarray:
        cur = stylized
        if self._w is not None and self._prev is not None and self._prev.shape == cur.shape:
            self._backend = self._backend or blend_backend(engine)
            cur = self._backend.blend(self._prev, cur, self._w, None)
        self._prev = cur
        return cur


class FlowFilter:
    """Warps the previous output onto the current frame by input flow and blends where trusted."""

    def __init__(
        self, weight: float, scale: float, preset: str, parallel: bool, flat: float = 0.5
    ) -> None:
        self.weight = weight
        self._flow = ReducedFlow(scale, preset, flat=flat)
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="castrt-flow") if parallel else None
        self._backend: NumpyBlend | TorchBlend | None = None
        self.reset()

    def reset(self) -> None:
        self._prev: np.ndarray | None = None
        self._prev_small: np.ndarray | None = None
        self._pending: Future[FlowResult] | FlowResult | None = None

    def begin(self, frame: np.ndarray) -> None:
        small = self._flow.small_gray(frame)
        self._pending = None
        if self._prev_small is not None and self._prev_small.shape == small.shape:
            args = (small, self._prev_small, frame.shape[:2])
            self._pending = (
                self._pool.submit(self._flow, *args) if self._pool else self._flow(*args)
            )
        self._prev_small = small

    def finish(self, stylized: np.ndarray, engine: StylizeEngine) -> np.ndarray:
        cur = stylized
        pending = self._pending
        res = pending.result() if isinstance(pending, Future) else pending
        if res is not None and self._prev is not None and self._prev.shape == cur.shape:
            self._backend = self._backend or blend_backend(engine)
            cur = self._backend.blend(self._prev, cur, self.weight * res.mask, res.flow)
        self._prev = cur
        return cur


# ------------------------------------------------------------------------ strategies


class Composite:
    """One stylizer (plain or stats-smoothing) followed by at most one output filter."""

    def __init__(
        self,
        name: str,
        stylizer: PlainStylizer | StatsStylizer,
        output: OutputFilter | None,
        scene_cut: float = 0.5,
    ) -> None:
        self.name = name
        self.stylizer = stylizer
        self.output = output
        self._cut = SceneCutDetector(scene_cut)
        self.cuts = 0

    def reset(self) -> None:
        self.stylizer.reset()
        if self.output is not None:
            self.output.reset()
        self._cut.reset()

    def step(
        self, frame: np.ndarray, engine: StylizeEngine, code: StyleCode, alpha: float
    ) -> np.ndarray:
        if self._cut(frame):
            self.cuts += 1
            self.stylizer.reset()
            if self.output is not None:
                self.output.reset()
        if self.output is None:
            return self.stylizer.stylize(frame, engine, code, alpha)
        self.output.begin(frame)
        return self.output.finish(self.stylizer.stylize(frame, engine, code, alpha), engine)


class Off(Composite):
    """Frame by frame, no smoothing."""

    def __init__(self) -> None:
        super().__init__("off", PlainStylizer(), None, scene_cut=0.0)


class Keyframe:
    """Stylize keyframes only; propagate the last stylized keyframe to other frames by flow.

    Synchronous by default: a frame is a keyframe when ``interval`` frames have passed (with
    ``target_fps`` the interval follows the measured stylize and propagate times), on a scene cut,
    or when less than ``min_reliable`` of the frame can be warped from the keyframe. With
    ``keyframe_async`` the engine runs on a worker thread and every frame is propagated from
    the newest finished keyframe, so output pace no longer waits for the engine.
    ``stats()`` reports the effective stylization rate.
    """

    name = "keyframe"

    def __init__(self, config: TemporalConfig | None = None) -> None:
        self.config = config or TemporalConfig()
        self._flow = ReducedFlow(
            self.config.flow_scale, self.config.flow_preset, flat=self.config.flow_flat
        )
        self._cut = SceneCutDetector(self.config.scene_cut)
        self._pool = (
            ThreadPoolExecutor(1, thread_name_prefix="castrt-key")
            if self.config.keyframe_async
            else None
        )
        self._warper = NumpyBlend()
        self.interval = self.config.interval
        self.frames = 0
        self.stylized = 0
        self._t_stylize = 0.0
        self._t_propagate = 0.0
        self.reset()

    def reset(self) -> None:
        self._key_small: np.ndarray | None = None
        self._key_out: np.ndarray | None = None
        self._since = 0
        self._pending: tuple[np.ndarray, Future[np.ndarray]] | None = None
        self._cut.reset()

    def stats(self) -> dict[str, float]:
        """Frames seen, frames stylized, their ratio and the current interval."""
        rate = self.stylized / self.frames if self.frames else 0.0
        return {
            "frames": self.frames,
            "stylized": self.stylized,
            "stylized_fraction": rate,
            "interval": self.interval,
        }

    def _adapt(self) -> None:
        fps = self.config.target_fps
        if fps <= 0 or self._t_stylize <= 0:
            return
        budget = 1.0 / fps
        if budget <= self._t_propagate:
            self.interval = self.config.max_interval
            return
        n = math.ceil((self._t_stylize - self._t_propagate) / (budget - self._t_propagate))
        self.interval = max(1, min(self.config.max_interval, n))

    @staticmethod
    def _ema_time(old: float, new: float) -> float:
        return new if old <= 0 else 0.7 * old + 0.3 * new

    def _stylize(
        self,
        frame: np.ndarray,
        small: np.ndarray,
        engine: StylizeEngine,
        code: StyleCode,
        alpha: float,
    ) -> np.ndarray:
        t0 = time.perf_counter()
        out = engine.process(frame, code, alpha)
        self._t_stylize = self._ema_time(self._t_stylize, time.perf_counter() - t0)
        self.stylized += 1
        self._key_small, self._key_out, self._since = small, out, 0
        return out

    def _propagate(self, frame: np.ndarray, small: np.ndarray) -> tuple[np.ndarray, float]:
        assert self._key_out is not None and self._key_small is not None
        t0 = time.perf_counter()
        res = self._flow(small, self._key_small, frame.shape[:2])
        out = self._warper.warp(self._key_out, res.flow)
        self._t_propagate = self._ema_time(self._t_propagate, time.perf_counter() - t0)
        return out, float(res.mask.mean())

    def step(
        self, frame: np.ndarray, engine: StylizeEngine, code: StyleCode, alpha: float
    ) -> np.ndarray:
        self.frames += 1
        small = self._flow.small_gray(frame)
        if self._cut(frame):
            self.reset()
            self._cut(frame)
        if self._key_out is None or self._key_small is None or self._key_small.shape != small.shape:
            return self._stylize(frame, small, engine, code, alpha)
        if self._pool is not None:
            return self._step_async(frame, small, engine, code, alpha)
        self._since += 1
        if self._since >= self.interval:
            out = self._stylize(frame, small, engine, code, alpha)
            self._adapt()
            return out
        out, reliable = self._propagate(frame, small)
        if reliable < self.config.min_reliable:
            return self._stylize(frame, small, engine, code, alpha)
        self._adapt()
        return out

    def _step_async(
        self,
        frame: np.ndarray,
        small: np.ndarray,
        engine: StylizeEngine,
        code: StyleCode,
        alpha: float,
    ) -> np.ndarray:
        assert self._pool is not None
        if self._pending is not None and self._pending[1].done():
            key_small, fut = self._pending
            self._key_small, self._key_out = key_small, fut.result()
            self._pending = None
            self.stylized += 1
        if self._pending is None:
            self._pending = (small, self._pool.submit(engine.process, frame.copy(), code, alpha))
        out, _ = self._propagate(frame, small)
        return out


def _parse(name: str) -> tuple[str | None, bool]:
    parts = [p.strip() for p in name.split("+") if p.strip()]
    stats = "stats" in parts
    rest = [p for p in parts if p != "stats"]
    if (
        not parts
        or len(rest) > 1
        or (rest and rest[0] not in ("ema", "adaptive", "flow"))
        or len(parts) != len(set(parts))
    ):
        raise InputError(
            f"unknown temporal strategy {name!r} (choose from {', '.join(STRATEGIES)})"
        )
    return (rest[0] if rest else None), stats


STRATEGIES = (
    "off",
    "ema",
    "adaptive",
    "flow",
    "stats",
    "ema+stats",
    "adaptive+stats",
    "flow+stats",
    "keyframe",
)

#: the strategy chosen by the measurements in bench/results/temporal.md.
DEFAULT_STRATEGY = "flow"


def make_strategy(name: str, config: TemporalConfig | None = None) -> TemporalStrategy:
    """A fresh strategy by name (``a+stats`` combines); raises InputError for an unknown one."""
    cfg = config or TemporalConfig()
    name = name.strip().lower()
    if name == "off":
        return Off()
    if name == "keyframe":
        return Keyframe(cfg)
    kind, stats = _parse(name)  # raises InputError listing STRATEGIES
    stylizer: PlainStylizer | StatsStylizer = (
        StatsStylizer(cfg.stats_weight, cfg.stats_style, cfg.style_switch)
        if stats
        else PlainStylizer()
    )
    output: OutputFilter | None = None
    if kind == "ema":
        output = EmaFilter(cfg.weight)
    elif kind == "adaptive":
        output = AdaptiveFilter(cfg.weight, cfg.adaptive_tau, cfg.flow_scale)
    elif kind == "flow":
        output = FlowFilter(
            cfg.flow_weight, cfg.flow_scale, cfg.flow_preset, cfg.flow_parallel, cfg.flow_flat
        )
    canonical = "+".join([p for p in (kind,) if p] + (["stats"] if stats else []))
    return Composite(canonical, stylizer, output, cfg.scene_cut)
