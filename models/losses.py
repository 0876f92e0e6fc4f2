"""CAST training losses: InfoNCE against a FIFO queue, hinge GAN (D and G sides), cycle L1.

Pure functions on tensors plus :class:`StyleQueues`, the per-layer negative queues.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn


def wide(t: Tensor) -> Tensor:
    """``t`` in fp32, or fp64 if it already is (losses never run in half precision)."""
    return t if t.dtype == torch.float64 else t.float()


def info_nce(q: Tensor, k: Tensor, queue: Tensor, tau: float) -> Tensor:
    """MoCo InfoNCE: CE([q·k, q·Q] / τ, label 0), mean over the batch.

    q, k: (N, D) unit codes (not detached); queue: (D, K) negatives (treated as constants).
    """
    q, k = wide(q), wide(k)
    l_pos = (q * k).sum(1, keepdim=True)  # (N, 1)
    l_neg = q @ queue.detach().to(q.dtype)  # (N, K)
    logits = torch.cat([l_pos, l_neg], 1) / tau  # (N, 1 + K)
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels)


def hinge_d(pred_real: Tensor, pred_fake: Tensor) -> Tensor:
    """Discriminator hinge: 0.5·(mean relu(1 − D(real)) + mean relu(1 + D(fake)))."""
    return 0.5 * (F.relu(1.0 - wide(pred_real)).mean() + F.relu(1.0 + wide(pred_fake)).mean())


def hinge_g(pred_fake: Tensor) -> Tensor:
    """Generator side as the reference computes it: mean relu(1 − D(fake)) (a hinge, not −mean D)."""
    return F.relu(1.0 - wide(pred_fake)).mean()


def cycle_l1(rec: Tensor, real: Tensor) -> Tensor:
    """Mean absolute reconstruction error."""
    return (wide(rec) - wide(real)).abs().mean()


def gather_rows(x: Tensor) -> Tensor:
    """Concatenate (N, D) rows from every process in rank order (identity without distributed)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, 0)


def random_unit_columns(dim: int, size: int, generator: torch.Generator | None = None) -> Tensor:
    """(dim, size) Gaussian columns normalised to unit length (the reference queue init)."""
    return F.normalize(torch.randn(dim, size, generator=generator), dim=0)


class StyleQueues(nn.Module):
    """FIFO negatives per MSP layer: buffers ``queue_data_B{l}`` (D, K) and ``queue_ptr_B{l}`` (1,).

    The reference also allocates ``queue_data_A{l}``, aliasing the same tensor, but never reads
    them; they are not stored here. Tensors for layers 0..max are drawn in order, as upstream.
    """

    def __init__(
        self,
        layers: Sequence[int],
        dim: int = 2048,
        size: int = 4096,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.layers = tuple(layers)
        self.size = size
        for i in range(max(self.layers) + 1):
            data = random_unit_columns(dim, size, generator)
            if i in self.layers:
                self.register_buffer(f"queue_data_B{i}", data)
                self.register_buffer(f"queue_ptr_B{i}", torch.zeros(1, dtype=torch.long))

    def queue(self, layer: int) -> Tensor:
        """A snapshot of layer ``layer``'s queue (D, K), detached."""
        return getattr(self, f"queue_data_B{layer}").clone().detach()

    @torch.no_grad()
    def enqueue(self, layer: int, keys: Tensor) -> None:
        """Write (N, D) keys (all-gathered over processes) at the pointer; advance it mod K."""
        keys = gather_rows(wide(keys.detach()))
        n = keys.shape[0]
        if self.size % n != 0:
            raise ValueError(f"queue size {self.size} must be a multiple of the global batch {n}")
        data: Tensor = getattr(self, f"queue_data_B{layer}")
        ptr_buf: Tensor = getattr(self, f"queue_ptr_B{layer}")
        ptr = int(ptr_buf.item())
        data[:, ptr : ptr + n] = keys.T.to(data.dtype)
        ptr_buf[0] = (ptr + n) % self.size


def style_nce(
    queries: Sequence[Tensor],
    keys: Sequence[Tensor],
    queues: StyleQueues,
    tau: float,
    enqueue: bool,
    enqueue_before_loss: bool = True,
) -> Tensor:
    """Σ_l InfoNCE(q_l, k_l, Q_l). With ``enqueue``, q_l enters Q_l — before its own loss by
    default (the reference quirk: q is among its own negatives), after it when corrected."""
    total = torch.zeros((), device=queries[0].device)
    for layer, q, k in zip(queues.layers, queries, keys):
        if enqueue and enqueue_before_loss:
            queues.enqueue(layer, q)
        total = total + info_nce(q, k, queues.queue(layer), tau)
        if enqueue and not enqueue_before_loss:
            queues.enqueue(layer, q)
    return total
