"""Run one CAST training step (1 process, or one rank under torchrun) and save the gradients.

python ddp_worker.py OUT CONTENT STYLE GLOBAL_BATCH
torchrun --standalone --nproc_per_node 2 ddp_worker.py OUT CONTENT STYLE GLOBAL_BATCH
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from trainhelp import tiny_config

from models.training.data import StepBatchSampler, UnalignedPairs, scan_images
from models.training.distributed import convert_batchnorm, init_from_env
from models.training.step import CASTObjective, CASTTrainNets, make_optimizers


def main() -> None:
    out, content, style, global_batch = (
        Path(sys.argv[1]),
        sys.argv[2],
        sys.argv[3],
        int(sys.argv[4]),
    )
    torch.set_num_threads(1)
    rank, world = init_from_env(torch.device("cpu"))
    # With the reference gain 0.02 an untrained decoder's output is almost flat, so the MSP's
    # batch norm on crops of it divides by ~sqrt(eps) and the style-NCE gradients (~1e5) amplify
    # float summation-order noise to a few %. Gain 0.03 keeps outputs textured (well-conditioned).
    cfg = tiny_config(batch_size=global_batch // world, **{"init.normal_gain": 0.03})
    nets = CASTTrainNets(cfg).to(torch.float64)  # fp64: the comparison is not about rounding
    if world > 1:
        convert_batchnorm(nets.msp_d)
    obj = CASTObjective(nets, make_optimizers(nets, cfg), cfg, torch.device("cpu"), None, False)
    a, b = scan_images(Path(content), "content", 32), scan_images(Path(style), "style", 32)
    ds = UnalignedPairs(a, b, cfg.data, cfg.seed)
    (indices,) = list(StepBatchSampler(0, 1, cfg.batch_size, rank, world))
    items = [ds[i] for i in indices]
    batch = {k: torch.stack([it[k] for it in items]) for k in ("A", "B", "index")}
    batch["A"], batch["B"] = batch["A"].double(), batch["B"].double()
    step = obj.step(
        batch["A"], batch["B"], batch["index"], update=os.environ.get("NO_UPDATE") != "1"
    )
    losses = torch.tensor(list(step.losses.values()), dtype=torch.float64)
    if world > 1:  # each process has the mean over its slice; the global mean is their average
        torch.distributed.all_reduce(losses)
        losses /= world
    if rank == 0:
        grads = {n: p.grad.clone() for n, p in nets.named_parameters() if p.grad is not None}
        mean_losses = dict(zip(step.losses, losses.tolist()))
        torch.save({"grads": grads, "losses": mean_losses, "state": nets.state_dict()}, out)


if __name__ == "__main__":
    main()
