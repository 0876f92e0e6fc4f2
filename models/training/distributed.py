"""torchrun support: process-group setup, gradient averaging, cross-process batch norm."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import Tensor, nn


def world() -> tuple[int, int]:
    """(rank, world_size); (0, 1) without an initialised process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: torch.device) -> tuple[int, int]:
    """Join the torchrun process group when WORLD_SIZE > 1 (nccl on CUDA, gloo on CPU)."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend)
    return world()


def average_gradients(params: Iterable[nn.Parameter]) -> None:
    """All-reduce and average the gradients of ``params`` in one flat buffer (what DDP does)."""
    _, size = world()
    if size == 1:
        return
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= size
    offset = 0
    for g in grads:
        n = g.numel()
        g.copy_(flat[offset : offset + n].view_as(g))
        offset += n


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every process."""
    if world()[1] == 1:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, 0)


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics span every process (differentiable, any backend).

    Keeps BatchNorm2d's state-dict keys; with one process it is plain BatchNorm2d.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or world()[1] == 1:
            return super().forward(x)
        xf = x if x.dtype == torch.float64 else x.float()
        c = x.shape[1]
        count = torch.full((1,), x.numel() / c, device=x.device, dtype=xf.dtype)
        # two passes (mean, then centred squares): E[x²] − E[x]² cancels badly for flat inputs
        total = _all_reduce(torch.cat([xf.sum((0, 2, 3)), count]))  # (C + 1,)
        n = total[-1]
        mean = total[:c] / n
        centred = xf - mean[None, :, None, None]
        var = _all_reduce((centred * centred).sum((0, 2, 3))) / n  # biased, as BatchNorm2d
        if self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                m = self.momentum if self.momentum is not None else 0.1
                unbiased = var * n / (n - 1).clamp_min(1.0)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * unbiased.detach())
                if self.num_batches_tracked is not None:
                    self.num_batches_tracked.add_(1)
        y = centred * torch.rsqrt(var[None, :, None, None] + self.eps)
        if self.affine:
            y = y * self.weight[None, :, None, None] + self.bias[None, :, None, None]
        return y.to(x.dtype)


def _all_reduce(t: Tensor) -> Tensor:
    """Differentiable sum over processes (its backward sums the gradients too)."""
    import torch.distributed.nn.functional as dnn

    with warnings.catch_warnings():  # the autograd-aware all_reduce is marked deprecated
        warnings.simplefilter("ignore", FutureWarning)
        return dnn.all_reduce(t)


def convert_batchnorm(module: nn.Module) -> nn.Module:
    """Swap every BatchNorm2d in ``module`` for :class:`GlobalBatchNorm2d` (same parameters)."""
    for name, child in module.named_children():
        if type(child) is nn.BatchNorm2d:
            new = GlobalBatchNorm2d(child.num_features, child.eps, child.momentum, child.affine)
            new.load_state_dict(child.state_dict())
            new.to(next(iter(child.state_dict().values())).device)
            setattr(module, name, new)
        else:
            convert_batchnorm(child)
    return module
