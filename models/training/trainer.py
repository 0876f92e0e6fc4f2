"""The training run: data, networks, the step loop, logging, checkpoints, signals, torchrun."""

from __future__ import annotations

import csv
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader

from models.errors import CheckpointError, InputError
from models.training.config import TrainConfig
from models.training.data import ImageList, StepBatchSampler, UnalignedPairs, scan_images
from models.training.distributed import broadcast_module, convert_batchnorm, init_from_env
from models.training.state import STATE_FILE, load_state, rng_state, save_state, set_rng_state
from models.training.step import CASTObjective, CASTTrainNets, lr_factor, make_optimizers
from realtime.config import to_dict
from realtime.images import write_image

LOG_FIELDS = ("step", "images", "lr_g", "images_per_s")


def resolve_precision(cfg: TrainConfig, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """(autocast dtype or None, channels_last) for ``device``."""
    amp: torch.dtype | None
    if cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda"):
        amp = torch.bfloat16
    else:
        amp = None
    cl = cfg.channels_last == "on" or (cfg.channels_last == "auto" and device.type == "cuda")
    return amp, cl


def pick_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device cuda: no CUDA device is available; use device: cpu")
    return dev


def preview_grid(real_a: Tensor, real_b: Tensor, fake_b: Tensor, rows: int = 4) -> np.ndarray:
    """uint8 RGB grid, one row per sample: content | style | output."""
    n = min(rows, real_a.shape[0])
    tiles = torch.cat(
        [real_a[:n].float(), real_b[:n].float(), fake_b[:n].float()], dim=3
    )  # (n,3,h,3w)
    grid = torch.cat(list(tiles), dim=1)  # (3, n·h, 3w)
    img = ((grid.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return img.permute(1, 2, 0).cpu().numpy()


@dataclass(frozen=True)
class RunPaths:
    root: Path

    @property
    def checkpoint(self) -> Path:
        return self.root / STATE_FILE

    @property
    def log(self) -> Path:
        return self.root / "log.csv"

    @property
    def images(self) -> Path:
        return self.root / "images"

    @property
    def skipped(self) -> Path:
        return self.root / "skipped.txt"


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop saves a checkpoint and stops after the current step."""

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True

    def __enter__(self) -> StopFlag:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Trainer:
    """Fit CAST on ``content``/``style`` folders into ``run_dir`` (resumable)."""

    def __init__(
        self,
        cfg: TrainConfig,
        content: Path,
        style: Path,
        run_dir: Path,
        *,
        resume: bool = False,
        progress: bool = True,
    ) -> None:
        self.cfg = cfg
        self.paths = RunPaths(run_dir)
        self.device = pick_device(cfg.device)
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        if self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True
        self.rank, self.world = init_from_env(self.device)
        self.progress = progress and self.rank == 0
        gb = cfg.batch_size * self.world
        if cfg.loss.queue_size % gb:
            raise InputError(
                f"loss.queue_size {cfg.loss.queue_size} must be a multiple of the global batch {gb}"
            )
        if self.paths.checkpoint.exists() and not resume:
            raise InputError(
                f"{run_dir}: already holds a training checkpoint; pass --resume to continue it "
                "or choose another --out"
            )
        self.content: ImageList = scan_images(content, "content", cfg.data.min_side)
        self.style: ImageList = scan_images(style, "style", cfg.data.min_side)
        self.nets = CASTTrainNets(cfg)
        if self.world > 1 and cfg.sync_batchnorm:
            convert_batchnorm(self.nets.msp_d)
        self.amp, self.channels_last = resolve_precision(cfg, self.device)
        mf = torch.channels_last if self.channels_last else torch.contiguous_format
        self.nets.to(self.device).to(memory_format=mf)
        self.optimizers = make_optimizers(self.nets, cfg)
        self.objective = CASTObjective(
            self.nets, self.optimizers, cfg, self.device, self.amp, self.channels_last
        )
        self.global_batch = gb
        self.epoch_length = max(len(self.content.paths), len(self.style.paths))
        self.steps_per_unit = (
            max(1, math.ceil(self.epoch_length / gb)) if cfg.optim.schedule_unit == "epoch" else 1
        )
        self.total_steps = (
            cfg.steps or (cfg.optim.n_constant + cfg.optim.n_decay) * self.steps_per_unit
        )
        self.step = 0
        if resume and self.paths.checkpoint.exists():
            self._load(self.paths.checkpoint)
        else:
            broadcast_module(self.nets)

    # --- schedule ------------------------------------------------------------------------------

    def unit_index(self, step: int) -> int:
        """The schedule unit (epoch or step) that ``step`` falls in."""
        if self.cfg.optim.schedule_unit == "epoch":
            return (step * self.global_batch) // self.epoch_length
        return step

    def set_lr(self, step: int) -> float:
        o = self.cfg.optim
        f = lr_factor(self.unit_index(step), o.n_constant, o.n_decay)
        for name, base in (("G", o.lr_g), ("D", o.lr_d), ("D_NCE", o.lr_d_nce)):
            for group in self.optimizers[name].param_groups:
                group["lr"] = base * f
        return o.lr_g * f

    def decay_from_sample(self) -> int | None:
        if not self.cfg.data.decay_phase_resize_to_crop:
            return None
        n = self.cfg.optim.n_constant
        if self.cfg.optim.schedule_unit == "epoch":
            return n * self.epoch_length
        return n * self.global_batch

    # --- checkpoints ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "world_size": self.world,
            "config": to_dict(self.cfg),
            "nets": {
                k: {n: t.detach().cpu() for n, t in v.items()}
                for k, v in self.nets.official_state_dicts().items()
            },
            "queues": {k: v.cpu() for k, v in self.nets.queues.state_dict().items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "rng": rng_state(),
            "data": {
                "content": [str(p) for p in self.content.paths],
                "style": [str(p) for p in self.style.paths],
            },
        }

    def save(self) -> None:
        if self.rank == 0:
            save_state(self.paths.checkpoint, self.state())
        if self.world > 1:
            dist.barrier()

    def _load(self, path: Path) -> None:
        st = load_state(path)
        if st["world_size"] * st["config"]["batch_size"] != self.global_batch:
            raise CheckpointError(
                f"{path}: saved with a global batch of {st['world_size'] * st['config']['batch_size']}, "
                f"now {self.global_batch}; resume with the same batch × processes"
            )
        try:
            self.nets.load_official_state_dicts(st["nets"])
            self.nets.queues.load_state_dict(st["queues"])
            for k, o in self.optimizers.items():
                o.load_state_dict(st["optimizers"][k])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"{path}: does not fit this configuration ({exc})") from None
        set_rng_state(st["rng"])
        self.step = int(st["step"])

    # --- the loop ------------------------------------------------------------------------------

    def loader(self) -> DataLoader[dict[str, Tensor]]:
        dataset = UnalignedPairs(
            self.content, self.style, self.cfg.data, self.cfg.seed, self.decay_from_sample()
        )
        sampler = StepBatchSampler(
            self.step, self.total_steps, self.cfg.batch_size, self.rank, self.world
        )
        workers = self.cfg.data.num_workers
        return DataLoader(
            dataset,
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.cfg.data.pin_memory and self.device.type == "cuda",
            persistent_workers=False,
            worker_init_fn=_ignore_interrupts,
            prefetch_factor=4 if workers else None,
        )

    def _write_skipped(self) -> None:
        skipped = self.content.skipped + self.style.skipped
        if self.rank != 0:
            return
        self.paths.root.mkdir(parents=True, exist_ok=True)
        if skipped:
            lines = [f"{p}\t{why}" for p, why in skipped]
            self.paths.skipped.write_text("\n".join(lines) + "\n", encoding="utf-8")
            print(
                f"note: skipped {len(skipped)} unusable image(s), listed in {self.paths.skipped}",
                file=sys.stderr,
            )

    def _log(self, row: dict[str, float]) -> None:
        new = not self.paths.log.exists()
        with self.paths.log.open("a", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)

    def run(self, on_step: Callable[[int, dict[str, float]], None] | None = None) -> int:
        """Train until ``total_steps`` or a stop signal; returns the last completed step."""
        self._write_skipped()
        tb = _tensorboard(self.paths.root) if self.rank == 0 else None
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True)
        self.nets.train()
        t_last, n_last = time.perf_counter(), 0
        with StopFlag() as stop:
            for batch in self.loader():
                lr = self.set_lr(self.step)
                out = self.objective.step(batch["A"], batch["B"], batch["index"])
                self.step += 1
                n_last += self.global_batch
                if on_step is not None:
                    on_step(self.step, out.losses)
                if self.rank == 0 and (
                    self.step % self.cfg.log_every == 0 or self.step == self.total_steps
                ):
                    now = time.perf_counter()
                    ips = n_last / max(now - t_last, 1e-9)
                    t_last, n_last = now, 0
                    row = {
                        "step": self.step,
                        "images": self.step * self.global_batch,
                        "lr_g": lr,
                        "images_per_s": ips,
                        **out.losses,
                    }
                    self._log(row)
                    if tb is not None:
                        for k, v in row.items():
                            if k != "step":
                                tb.add_scalar(k, v, self.step)
                    if bar is not None:
                        bar.set_postfix(
                            {
                                "G": f"{out.losses['G']:.3f}",
                                "D": f"{out.losses['D']:.3f}",
                                "NCE_D": f"{out.losses['NCE_D']:.3f}",
                                "img/s": f"{ips:.2f}",
                            }
                        )
                if self.rank == 0 and (
                    self.step % self.cfg.image_every == 0 or self.step == self.total_steps
                ):
                    grid = preview_grid(out.real_a, out.real_b, out.fake_b)
                    write_image(self.paths.images / f"step_{self.step:07d}.png", grid)
                    if tb is not None:
                        tb.add_image("content|style|output", grid, self.step, dataformats="HWC")
                if bar is not None:
                    bar.update(1)
                stopping = self._stop_requested(stop.requested)
                if (
                    self.step % self.cfg.save_every == 0
                    or stopping
                    or self.step == self.total_steps
                ):
                    self.save()
                if stopping:
                    if self.rank == 0:
                        print(
                            f"\nstopped at step {self.step}; checkpoint saved, continue with --resume",
                            file=sys.stderr,
                        )
                    break
        if bar is not None:
            bar.close()
        if tb is not None:
            tb.close()
        return self.step

    def _stop_requested(self, local: bool) -> bool:
        if self.world == 1:
            return local
        flag = torch.tensor([1.0 if local else 0.0], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item() > 0)


def _ignore_interrupts(worker_id: int) -> None:
    """Loader workers leave Ctrl-C to the main process, which saves and stops cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _tensorboard(root: Path) -> Any:
    """A SummaryWriter when the ``tensorboard`` package is installed, else None (CSV + PNG only)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(root / "tb"))
