"""``castrt stylize``: stylize still images at their own width and height."""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from models import functional as Fn
from models.errors import CastRTError, InputError
from models.generator import CASTGenerator
from models.style_code import StyleCode
from realtime.commands.common import (
    add_model_args,
    add_style_args,
    build_generator,
    configure_threads,
    resolve_device,
    style_code_from_args,
)
from realtime.images import read_image, write_image
from realtime.styles import rgb_to_tensor

DEFAULT_MAX_SIDE = 4096


@dataclass(frozen=True)
class StillOptions:
    """How one still image is stylized."""

    alpha: float = 1.0
    preserve_color: bool = False
    max_side: int = DEFAULT_MAX_SIDE


@torch.inference_mode()
def stylize_rgb(
    gen: CASTGenerator, rgb: np.ndarray, code: StyleCode, opts: StillOptions
) -> np.ndarray:
    """uint8 RGB (H, W, 3) → stylized uint8 RGB of exactly the same size.

    Images whose longer side exceeds ``opts.max_side`` are processed at that size and
    resized back (bicubic) to the input's size.
    """
    param = next(gen.parameters())
    x = rgb_to_tensor(rgb).to(param.device, param.dtype)  # (1, 3, H, W)
    h, w = rgb.shape[:2]
    scale = min(1.0, opts.max_side / max(h, w)) if opts.max_side > 0 else 1.0
    work = x
    if scale < 1.0:
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        work = F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True)
    out = gen.stylize(work, code, opts.alpha, exact_size=True)
    if scale < 1.0:
        out = F.interpolate(out, size=(h, w), mode="bicubic", align_corners=False)
    if opts.preserve_color:
        out = Fn.preserve_color(out, x)
    return Fn.unit_to_uint8(out.float(), rounding="round")[0].cpu().numpy()


def output_paths(inputs: list[Path], out: Path) -> list[Path]:
    """One output file per input: ``out`` itself for one input, else ``out/<stem>.png``."""
    if len(inputs) == 1 and not (out.is_dir() or str(out).endswith(("/", "\\"))):
        return [out]
    seen: dict[str, int] = {}
    paths = []
    for p in inputs:
        n = seen.get(p.stem, 0)
        seen[p.stem] = n + 1
        paths.append(out / (f"{p.stem}.png" if n == 0 else f"{p.stem}_{n}.png"))
    return paths


def run(args: argparse.Namespace) -> int:
    configure_threads(args.threads)
    inputs = [Path(p) for p in args.images]
    outputs = output_paths(inputs, Path(args.output))
    if len(outputs) == 1 and outputs[0].suffix == "":
        raise InputError(f"{outputs[0]}: output needs an image suffix such as .png or .jpg")
    if not args.overwrite:
        existing = [o for o in outputs if o.exists()]
        if existing:
            raise InputError(f"{existing[0]}: output exists (use --overwrite to replace it)")
    device = resolve_device(args.device)
    gen = build_generator(args, device)
    code = style_code_from_args(args, gen)
    opts = StillOptions(
        alpha=args.alpha, preserve_color=args.preserve_color, max_side=args.max_side
    )
    failed = 0
    for src, dst in zip(inputs, outputs):
        t0 = time.perf_counter()
        try:
            rgb = read_image(src)
            result = stylize_rgb(gen, rgb, code, opts)
            write_image(dst, result)
        except CastRTError as exc:
            failed += 1
            print(f"castrt stylize: error: {exc}", file=sys.stderr)
            continue
        h, w = rgb.shape[:2]
        print(f"{src} -> {dst} ({w}×{h}, {time.perf_counter() - t0:.2f} s)")
    if failed:
        print(f"castrt stylize: {failed} of {len(inputs)} input(s) failed", file=sys.stderr)
        return 1
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stylize",
        help="stylize images",
        description="Stylize still images at their own width and height.",
    )
    p.add_argument("images", nargs="+", metavar="IMAGE", help="input image file(s)")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUT",
        help="output file (one input) or folder (several)",
    )
    add_style_args(p, "content image")
    p.add_argument(
        "--max-side",
        type=int,
        default=DEFAULT_MAX_SIDE,
        help=f"process larger images at this longer side and resize back (0: never; default {DEFAULT_MAX_SIDE})",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    add_model_args(p)
    p.set_defaults(func=run)
