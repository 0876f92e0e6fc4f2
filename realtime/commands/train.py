"""``castrt train``: fit CAST on folders of photos and artworks; ``export`` a generator; ``bench``.

    castrt train --config configs/train/cast.yaml --content DIR --style DIR --out RUN_DIR
                 [--steps N] [--batch B] [--crop N] [--resume] [--set key=value ...]
    castrt train export RUN_DIR -o model.safetensors [--official DIR]
    castrt train bench [--crop 256] [--batch 1] [--steps 3] [--device cpu]

Multi-process: ``torchrun --nproc_per_node N -m realtime.cli train ...``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

from models.checkpoint import save_generator
from models.errors import CheckpointError, InputError
from models.fileio import atomic_write
from models.generator import CASTGenerator
from models.training.config import TrainConfig
from models.training.state import load_state
from models.training.step import OFFICIAL_NAMES, CASTObjective, CASTTrainNets, make_optimizers
from models.training.trainer import Trainer, pick_device, resolve_precision
from realtime.config import load_config

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "train" / "cast.yaml"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train CAST (or: train export RUN_DIR -o FILE; train bench)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        # every argument goes to the fit / export / bench parser below, which print their own help
        prefix_chars="+",
        add_help=False,
    )
    p.add_argument("rest", nargs="*", help="options (see `castrt train --help`)")
    p.set_defaults(func=run)


def _fit_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="castrt train")
    p.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG,
        help="YAML preset (default: configs/train/cast.yaml)",
    )
    p.add_argument(
        "--content", type=Path, required=True, help="folder of content photos (domain A)"
    )
    p.add_argument("--style", type=Path, required=True, help="folder of style artworks (domain B)")
    p.add_argument(
        "--out", type=Path, required=True, help="run directory (checkpoint, log.csv, images/)"
    )
    p.add_argument(
        "--steps", type=int, help="total optimisation steps (default: the whole schedule)"
    )
    p.add_argument("--batch", type=int, help="per-process batch size")
    p.add_argument("--crop", type=int, help="training crop side (load size scales by 286/256)")
    p.add_argument("--device", help="cpu, cuda or auto")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out exactly")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config field, e.g. --set loss.queue_size=256 (YAML value)",
    )
    return p


def parse_sets(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set: expected KEY=VALUE, got {item!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def fit_config(args: argparse.Namespace) -> TrainConfig:
    overrides = parse_sets(args.set)
    if args.steps is not None:
        overrides["steps"] = args.steps
    if args.batch is not None:
        overrides["batch_size"] = args.batch
    if args.device is not None:
        overrides["device"] = args.device
    if args.crop is not None:
        overrides["data.crop_size"] = args.crop
        overrides["data.load_size"] = round(args.crop * 286 / 256)
    return load_config(TrainConfig, args.config, overrides)


def run_fit(argv: list[str]) -> int:
    args = _fit_parser().parse_args(argv)
    cfg = fit_config(args)
    trainer = Trainer(
        cfg, args.content, args.style, args.out, resume=args.resume, progress=not args.no_progress
    )
    if trainer.rank == 0:
        print(
            f"training {trainer.total_steps} steps from step {trainer.step}: {len(trainer.content.paths)} photos, "
            f"{len(trainer.style.paths)} artworks, global batch {trainer.global_batch}, device {trainer.device}",
            file=sys.stderr,
        )
    step = trainer.run()
    if trainer.rank == 0:
        print(
            f"done: step {step}; export with `castrt train export {args.out} -o model.safetensors`",
            file=sys.stderr,
        )
    return 0


def export_generator(run_dir: Path, out: Path) -> Path:
    """Write the run's AE + Dec_B + Dec_A as a file ``models.load_generator`` reads."""
    st = load_state(run_dir)
    gen = CASTGenerator(with_photo_decoder=True)
    try:
        gen.encoder.load_state_dict(st["nets"]["AE"])
        gen.dec_b.load_state_dict(st["nets"]["Dec_B"])
        assert gen.dec_a is not None
        gen.dec_a.load_state_dict(st["nets"]["Dec_A"])
    except (KeyError, RuntimeError) as exc:
        raise CheckpointError(
            f"{run_dir}: generator weights missing or malformed ({exc})"
        ) from None
    gen.refresh_checkpoint_id()
    gen.provenance = {"kind": "trained", "run": str(run_dir), "step": str(st["step"])}
    return save_generator(gen, out, step=st["step"], config=st["config"])


def _save_pth(path: Path, state: dict[str, torch.Tensor]) -> None:
    def write(tmp: Path) -> None:
        torch.save(state, tmp)

    atomic_write(path, write)


def export_official(run_dir: Path, out_dir: Path, epoch: str = "latest") -> list[Path]:
    """Write ``<epoch>_net_{AE,Dec_A,Dec_B,D,P_style,D_A,D_B}.pth`` as the reference saves them."""
    st = load_state(run_dir)
    written = []
    for name in OFFICIAL_NAMES:
        path = out_dir / f"{epoch}_net_{name}.pth"
        _save_pth(path, st["nets"][name])
        written.append(path)
    return written


def run_export(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="castrt train export")
    p.add_argument("run_dir", type=Path)
    p.add_argument("-o", "--output", type=Path, help="generator file (.safetensors)")
    p.add_argument(
        "--official",
        type=Path,
        metavar="DIR",
        help="also write reference-style latest_net_*.pth files",
    )
    args = p.parse_args(argv)
    if not args.output and not args.official:
        raise InputError("train export: give -o FILE.safetensors and/or --official DIR")
    if args.output:
        if args.output.suffix != ".safetensors":
            raise InputError(f"{args.output}: the generator file must end in .safetensors")
        print(f"wrote {export_generator(args.run_dir, args.output)}")
    if args.official:
        for path in export_official(args.run_dir, args.official):
            print(f"wrote {path}")
    return 0


class _BenchCase:
    """One training configuration with its own networks, ready to time whole steps."""

    def __init__(self, cfg: TrainConfig) -> None:
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        amp, cl = resolve_precision(cfg, self.device)
        nets = CASTTrainNets(cfg)
        nets.to(self.device).to(
            memory_format=torch.channels_last if cl else torch.contiguous_format
        )
        nets.train()
        self.obj = CASTObjective(nets, make_optimizers(nets, cfg), cfg, self.device, amp, cl)
        gen = torch.Generator().manual_seed(0)
        c, b = cfg.data.crop_size, cfg.batch_size
        self.a = torch.rand(b, 3, c, c, generator=gen) * 2 - 1
        self.s = torch.rand(b, 3, c, c, generator=gen) * 2 - 1
        self.seconds = 0.0
        self.images = 0
        self.calls = 0

    def run_step(self, timed: bool) -> None:
        b = self.cfg.batch_size
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        self.obj.step(self.a, self.s, torch.arange(b) + self.calls * b)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.calls += 1
        if timed:
            self.seconds += time.perf_counter() - t
            self.images += b


BENCH_MODES: dict[str, dict[str, Any]] = {
    # the reference recipe as published: fp32, NCHW, its redundant work included
    "reference": {"precision": "fp32", "channels_last": "off", "reference_compute": True},
    # ours: no redundant work; bf16 autocast + channels_last on CUDA (fp32 NCHW on CPU)
    "ours": {"precision": "auto", "channels_last": "auto", "reference_compute": False},
}


def run_bench(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="castrt train bench")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    p.add_argument("--crop", type=int, default=256)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--steps", type=int, default=3, help="timed steps per mode (interleaved)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--modes", default="reference,ours", help="comma list of reference, ours")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = {
        "data.crop_size": args.crop,
        "data.load_size": args.crop,
        "batch_size": args.batch,
        "device": args.device,
    }
    names = [m.strip() for m in args.modes.split(",") if m.strip()]
    for name in names:
        if name not in BENCH_MODES:
            raise InputError(f"--modes: unknown mode {name!r} (reference, ours)")
    cases = {
        n: _BenchCase(load_config(TrainConfig, args.config, {**base, **BENCH_MODES[n]}))
        for n in names
    }
    for i in range(args.warmup + args.steps):
        for case in cases.values():  # interleaved, so load changes hit every mode alike
            case.run_step(timed=i >= args.warmup)
    dev = pick_device(args.device)
    label = (
        torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    rates = {n: c.images / max(c.seconds, 1e-9) for n, c in cases.items()}
    for n, r in rates.items():
        print(
            f"{n:10s} {r:8.3f} images/s  ({1 / r:.2f} s/image; crop {args.crop}, batch {args.batch}, {label})"
        )
    if "reference" in rates and "ours" in rates:
        print(f"speedup    {rates['ours'] / rates['reference']:.2f}x")
    return 0


def run(args: argparse.Namespace) -> int:
    rest = list(args.rest)
    if rest and rest[0] == "export":
        return run_export(rest[1:])
    if rest and rest[0] == "bench":
        return run_bench(rest[1:])
    return run_fit(rest)
