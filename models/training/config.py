"""Frozen training configuration; ``configs/train/cast.yaml`` reproduces the reference recipe.

Built with :func:`realtime.config.load_config` (unknown keys are an error).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class DataConfig:
    """Loading and augmentation (reference: resize 286×286 bicubic, random crop 256, flip, [-1, 1])."""

    load_size: int = 286
    crop_size: int = 256
    flip: bool = True
    #: reference quirk: once in the LR-decay phase (epoch > n_constant), resize straight to crop_size.
    decay_phase_resize_to_crop: bool = True
    #: images whose shorter side is below this are skipped (and listed).
    min_side: int = 32
    num_workers: int = 2
    pin_memory: bool = True

    def __post_init__(self) -> None:
        if self.crop_size < 32 or self.load_size < self.crop_size:
            raise ValueError(
                f"need 32 <= crop_size <= load_size, got crop {self.crop_size}, load {self.load_size}"
            )
        if self.num_workers < 0 or self.min_side < 1:
            raise ValueError("num_workers must be >= 0 and min_side >= 1")


@dataclass(frozen=True)
class LossConfig:
    """Loss weights and the contrastive setup (reference option defaults)."""

    lambda_gan_g_a: float = 0.1  # G: hinge(D_B(fake_B))
    lambda_gan_g_b: float = 0.1  # G: hinge(D_A(fake_A))
    lambda_gan_d_a: float = 1.0
    lambda_gan_d_b: float = 1.0
    lambda_nce_g: float = 0.05
    lambda_nce_d: float = 1.0
    lambda_cyc: float = 4.0
    nce_layers: tuple[int, ...] = (0, 1, 2, 3)
    temperature: float = 0.07
    queue_size: int = 4096
    code_dim: int = 2048
    #: reference quirk (True): q enters the queue before its own loss, so it is its own negative.
    enqueue_before_loss: bool = True
    #: the MSP step enqueues its queries (reference: True). False keeps the queues at their
    #: initial random unit columns: fixed negatives, e.g. to overfit a single artwork.
    queue_update: bool = True
    #: kornia RandomResizedCrop for the style views: output side (0 = data.crop_size), scale, ratio.
    patch_size: int = 0
    patch_scale: tuple[float, float] = (0.8, 1.0)
    patch_ratio: tuple[float, float] = (0.75, 1.33)

    def __post_init__(self) -> None:
        if not self.nce_layers or any(not 0 <= i <= 5 for i in self.nce_layers):
            raise ValueError(f"nce_layers must be indices in 0..5, got {self.nce_layers}")
        if self.temperature <= 0 or self.queue_size < 1:
            raise ValueError("temperature must be > 0 and queue_size >= 1")


@dataclass(frozen=True)
class OptimConfig:
    """Three Adam optimisers and the constant-then-linear-decay schedule."""

    lr_g: float = 1e-4
    lr_d: float = 1e-4
    lr_d_nce: float = 1e-4
    beta1: float = 0.5
    beta2: float = 0.999
    #: schedule unit: 'epoch' (max(|A|,|B|) samples, as the reference) or 'step'.
    schedule_unit: Literal["epoch", "step"] = "epoch"
    n_constant: int = 200
    n_decay: int = 200


@dataclass(frozen=True)
class InitConfig:
    """Initialisation: N(0, gain) for AE/Dec/D/P (BN weight N(1, gain)); xavier(gain) for D_A/D_B."""

    normal_gain: float = 0.02
    xavier_gain: float = 0.02


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run needs besides the data folders and the run directory."""

    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    init: InitConfig = field(default_factory=InitConfig)
    #: per-process batch size (the reference uses 1).
    batch_size: int = 1
    #: total optimisation steps; 0 = the whole schedule (n_constant + n_decay units).
    steps: int = 0
    seed: int = 0
    save_every: int = 5000
    log_every: int = 50
    image_every: int = 400
    device: str = "auto"
    #: 'auto' = bf16 autocast on CUDA, fp32 on CPU.
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    #: 'auto' = channels_last on CUDA only.
    channels_last: Literal["auto", "on", "off"] = "auto"
    #: run the reference's redundant work too (unused A-side codes, all six MSP stages): for benchmarks.
    reference_compute: bool = False
    #: under torchrun, batch-norm statistics of the MSP over the global batch (matches 1 process).
    sync_batchnorm: bool = True
    threads: int = 0

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.steps < 0 or self.save_every < 1 or self.log_every < 1 or self.image_every < 1:
            raise ValueError("steps must be >= 0; save_every, log_every, image_every >= 1")

    @property
    def patch_size(self) -> int:
        return self.loss.patch_size or self.data.crop_size
