"""Reduced-precision engines against fp32 on real photos: every content photo × every style.

Run from the repository root (needs ``../shared``: the reference fixture checkpoint and the
photos and artworks of ``../shared/data``)::

    python bench/numerics_sweep.py --variant precision=bf16,centre_activations=off \
        --variant precision=bf16 --json numerics.json

Each photo of ``../shared/data/content`` is scaled to a shorter side of at most ``--max-side``
and cut to its flattest ``--window`` (the window of least mean Sobel gradient, a sky or a
wall, where bf16 rounding is amplified by AdaIN); both are stylized with every style of
``../shared/data/style`` by ``CASTGenerator.stylize`` in float32 (clamped and rounded to
uint8) and by each engine variant. Printed per photo and kind: the worst style's share of
pixels within ``--levels`` of fp32 and how many styles fall under ``--goal``; JSON holds
every style's share.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import functional as Fn
from models.checkpoint import load_generator
from models.errors import CastRTError
from models.fileio import write_json
from models.generator import CASTGenerator
from models.style_code import StyleCode
from realtime.commands.bench import parse_variant
from realtime.engine import StylizeEngine
from realtime.images import read_image

SHARED = Path(__file__).resolve().parents[2] / "shared"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


def images(folder: Path) -> list[Path]:
    """The image files of ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def fit_shorter_side(img: np.ndarray, max_side: int) -> np.ndarray:
    """``img`` scaled down (area filter) so that its shorter side is at most ``max_side``."""
    scale = max_side / min(img.shape[:2])
    if scale >= 1:
        return img
    size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def flattest_window(img: np.ndarray, height: int, width: int, step: int = 25) -> np.ndarray:
    """The ``height`` × ``width`` window of ``img`` (on a ``step`` grid) with the least mean
    Sobel gradient magnitude of its grey image."""
    gray = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grad = np.abs(cv2.Sobel(gray, cv2.CV_32F, 1, 0)) + np.abs(cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    corners = [
        (y, x)
        for y in range(0, img.shape[0] - height + 1, step)
        for x in range(0, img.shape[1] - width + 1, step)
    ]
    if not corners:
        raise ValueError(f"image {img.shape[1]}x{img.shape[0]} is smaller than the window")
    y, x = min(corners, key=lambda c: float(grad[c[0] : c[0] + height, c[1] : c[1] + width].mean()))
    return np.ascontiguousarray(img[y : y + height, x : x + width])


def reference(gen: CASTGenerator, frame: np.ndarray, code: StyleCode) -> np.ndarray:
    """fp32 ``CASTGenerator.stylize``, clamped and rounded to uint8 (the engine's contract)."""
    with torch.inference_mode():
        x = Fn.uint8_to_unit(torch.from_numpy(np.ascontiguousarray(frame)))
        out = gen.stylize(x, code, 1.0, exact_size=True)
        return Fn.unit_to_uint8(out, rounding="round")[0].numpy()


def within(a: np.ndarray, b: np.ndarray, levels: int) -> float:
    """Share of values of ``a`` within ``levels`` of ``b`` (uint8 arrays of one shape)."""
    return float((np.abs(a.astype(np.int16) - b.astype(np.int16)) <= levels).mean())


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", type=Path, default=SHARED / "fixtures/cast_upstream/CAST_model")
    p.add_argument("--content", type=Path, default=SHARED / "data/content")
    p.add_argument("--style", type=Path, default=SHARED / "data/style")
    p.add_argument("--variant", action="append", required=True, help="EngineConfig fields")
    p.add_argument("--max-side", type=int, default=480)
    p.add_argument("--window", default="304x200", help="WxH of the flattest window")
    p.add_argument("--levels", type=int, default=3)
    p.add_argument("--goal", type=float, default=0.999)
    p.add_argument("--limit", type=int, default=0, help="first N photos and styles only")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    try:
        ww, wh = (int(v) for v in args.window.lower().split("x"))
        cpu, no_overrides = torch.device("cpu"), argparse.Namespace(resolution=0, threads=0)
        configs = {spec: parse_variant(spec, cpu, no_overrides) for spec in args.variant}
        gen = load_generator(args.checkpoint, with_photo_decoder=False)
        contents, styles = images(args.content), images(args.style)
    except (OSError, ValueError, CastRTError) as e:
        print(f"numerics_sweep: {e}", file=sys.stderr)
        return 2
    if args.limit:
        contents, styles = contents[: args.limit], styles[: args.limit]
    engines = {spec: StylizeEngine(gen, cfg) for spec, cfg in configs.items()}
    with torch.inference_mode():
        codes = {
            s.name: gen.style_code(Fn.uint8_to_unit(torch.from_numpy(np.array(read_image(s)))))
            for s in styles
        }
    rows: list[dict[str, object]] = []
    pooled: dict[str, dict[str, list[float]]] = {
        kind: {spec: [] for spec in engines} for kind in ("whole", "flattest")
    }
    start = time.perf_counter()
    print(f"| photo | kind | size | {' | '.join(engines)} |")
    print(f"|---|---|---|{'---:|' * len(engines)}")
    for path in contents:
        img = fit_shorter_side(np.array(read_image(path)), args.max_side)
        for kind, frame in (("whole", img), ("flattest", flattest_window(img, wh, ww))):
            shares: dict[str, dict[str, float]] = {spec: {} for spec in engines}
            for name, code in codes.items():
                want = reference(gen, frame, code)
                for spec, engine in engines.items():
                    shares[spec][name] = within(engine.process(frame, code), want, args.levels)
            rows.append(
                {"photo": path.name, "kind": kind, "size": list(frame.shape[:2]), "share": shares}
            )
            for spec, by_style in shares.items():
                pooled[kind][spec] += by_style.values()
            cells = [
                f"{100 * min(v.values()):.3f} % ({sum(s < args.goal for s in v.values())} under)"
                for v in shares.values()
            ]
            h, w = frame.shape[:2]
            print(f"| {path.name} | {kind} | {w}×{h} | {' | '.join(cells)} |", flush=True)
    for kind, by_spec in pooled.items():
        totals = [
            f"{100 * min(v):.3f} % ({sum(x < args.goal for x in v)} of {len(v)} under)"
            for v in by_spec.values()
        ]
        print(f"| **all** | {kind} | | {' | '.join(totals)} |")
    print(f"{len(rows)} frames × {len(codes)} styles in {time.perf_counter() - start:.0f} s")
    if args.json:
        meta = {"levels": args.levels, "goal": args.goal, "variants": list(engines)}
        write_json(args.json, {"meta": meta, "rows": rows}, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
