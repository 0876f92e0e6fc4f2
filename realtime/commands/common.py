"""Options shared by sub-commands: model loading, device, threads, style selection."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from models.checkpoint import load_generator
from models.errors import InputError
from models.generator import CASTGenerator, untrained_generator
from models.style_code import StyleCode

NO_CHECKPOINT_MESSAGE = (
    "no checkpoint given: pass --checkpoint DIR (an official CAST model directory holding "
    "latest_net_AE.pth and latest_net_Dec_B.pth, from the authors' release; see README) or "
    "--checkpoint FILE.safetensors (from `castrt train export`); --untrained runs seeded random "
    "weights for smoke tests only"
)


def add_model_args(parser: argparse.ArgumentParser) -> None:
    """--checkpoint / --untrained / --epoch / --device / --threads."""
    g = parser.add_argument_group("model")
    g.add_argument(
        "--checkpoint",
        metavar="PATH",
        help="official CAST checkpoint directory or a .safetensors file from `castrt train export`",
    )
    g.add_argument(
        "--epoch",
        default="latest",
        help="which <epoch>_net_*.pth to load from an official directory (default: latest)",
    )
    g.add_argument(
        "--untrained",
        action="store_true",
        help="seeded random weights (smoke tests and benchmarks only)",
    )
    g.add_argument("--seed", type=int, default=0, help="seed for --untrained (default 0)")
    g.add_argument(
        "--device", default="auto", help="cpu, cuda, cuda:N or auto (default: cuda if available)"
    )
    g.add_argument(
        "--threads", type=int, default=0, help="CPU threads for torch (default: all cores)"
    )


def resolve_device(name: str) -> torch.device:
    """``auto`` → cuda if available else cpu; refuses an unavailable CUDA device clearly."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise InputError(
            f"--device: unknown device {name!r} (use cpu, cuda, cuda:N or auto)"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError(
            "--device cuda: no CUDA device is available on this machine; use --device cpu"
        )
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"--device: unsupported device type {dev.type!r} (use cpu or cuda)")
    return dev


def configure_threads(threads: int) -> None:
    """Use ``threads`` CPU threads (0: all cores)."""
    if threads < 0:
        raise InputError(f"--threads must be >= 0, got {threads}")
    if threads:
        torch.set_num_threads(threads)


def build_generator(args: argparse.Namespace, device: torch.device | None = None) -> CASTGenerator:
    """The generator that ``--checkpoint``/``--untrained`` ask for, on ``device`` (CPU by default)."""
    dev = device or torch.device("cpu")
    if args.untrained and args.checkpoint:
        raise InputError("give either --checkpoint or --untrained, not both")
    if args.untrained:
        print(
            f"note: using UNTRAINED seeded random weights (seed {args.seed}); the output is not a real stylization",
            file=sys.stderr,
        )
        return untrained_generator(seed=args.seed, with_photo_decoder=False).to(dev)
    if not args.checkpoint:
        raise InputError(NO_CHECKPOINT_MESSAGE)
    return load_generator(Path(args.checkpoint), dev, epoch=args.epoch, with_photo_decoder=False)


def parse_weights(text: str | None) -> list[float] | None:
    """``"0.7,0.3"`` → [0.7, 0.3]; refuses anything else with a one-line error."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--weights: expected comma-separated numbers, got {text!r}") from None
    if not values:
        raise InputError("--weights: empty")
    return values


def unit_interval(name: str) -> Callable[[str], float]:
    """argparse type for a float in [0, 1]."""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{name} must be a number in [0, 1], got {text!r}"
            ) from None
        if not 0.0 <= v <= 1.0:
            raise argparse.ArgumentTypeError(f"{name} must be in [0, 1], got {v}")
        return v

    return parse


def add_style_args(parser: argparse.ArgumentParser, content: str = "content") -> None:
    """--style (repeatable) / --weights / --alpha / --preserve-color / --style-size / --no-cache."""
    from realtime.styles import DEFAULT_STYLE_SIZE

    g = parser.add_argument_group("style")
    g.add_argument(
        "--style",
        action="append",
        required=True,
        metavar="STYLE",
        help="style image or folder (repeat to mix styles)",
    )
    g.add_argument(
        "--weights",
        metavar="W1,W2,...",
        help="mixing weights for several --style images (default equal)",
    )
    g.add_argument(
        "--alpha",
        type=unit_interval("--alpha"),
        default=1.0,
        help="style strength in [0, 1] (default 1)",
    )
    g.add_argument("--preserve-color", action="store_true", help=f"keep the {content}'s colours")
    g.add_argument(
        "--style-size",
        type=int,
        default=DEFAULT_STYLE_SIZE,
        help=f"shorter side the style is encoded at (0: native; default {DEFAULT_STYLE_SIZE})",
    )
    g.add_argument(
        "--no-cache", action="store_true", help="do not read or write the style-code disk cache"
    )


def style_code_from_args(args: argparse.Namespace, gen: CASTGenerator) -> StyleCode:
    """The (possibly mixed) style code that the --style/--weights/--style-size options ask for."""
    from realtime.styles import StyleBank, default_cache_dir

    bank = StyleBank(gen, args.style_size, None if args.no_cache else default_cache_dir())
    return bank.mix(args.style, parse_weights(args.weights))
