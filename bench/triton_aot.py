"""Pre-flight for the Triton conv kernels without a GPU: compile every layer for an H100.

    python bench/triton_aot.py [--arch 90]

Each Triton layer of the engine's network (encoder, decoder, phase decoder; fp16 and bf16)
is compiled for compute capability ``--arch`` the way the JIT would on the card
(``realtime.triton_conv.compile_ahead``). Prints one row per specialisation: shared memory,
whether the code uses Hopper's wgmma tensor-core instructions and cp.async software
pipelining; exits 1 if any layer fails to compile, lacks either, or needs more shared
memory than the card has. Run it without ``TRITON_INTERPRET``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHARED_BYTES = {90: 227 * 1024, 80: 163 * 1024, 89: 99 * 1024}  # per block, by arch


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", type=int, default=90, choices=sorted(SHARED_BYTES))
    args = p.parse_args()
    if os.environ.get("TRITON_INTERPRET") == "1":
        print("triton_aot: unset TRITON_INTERPRET (it replaces the compiler)", file=sys.stderr)
        return 1
    from models.generator import untrained_generator
    from realtime import triton_conv as tc

    nets = tc.triton_networks(untrained_generator(seed=0, with_photo_decoder=False))
    layers = [m for net in nets.values() for m in net]
    keys: list[tuple[str, int, int, bool, str]] = []
    for m in layers:
        if isinstance(m, tc.TritonReflectConv):
            key = ("reflect", m.w_mat.shape[0] // 9, m.w_mat.shape[1], m.relu, m.input_op)
        elif isinstance(m, tc.TritonUpConv):
            key = ("phases", m.w_phases.shape[1] // 4, m.w_phases.shape[2], m.relu, "up2")
        else:
            continue
        if key not in keys:
            keys.append(key)
    print(f"Triton conv kernels compiled for sm_{args.arch} (no GPU needed)")
    print("| kernel | C→K | op | ReLU | dtype | blocks | shared KiB | wgmma | cp.async | |")
    print("|---|---|---|---|---|---|---:|---|---|---|")
    bad = 0
    for dtype in (torch.float16, torch.bfloat16):
        for kernel, c, k, relu, op in keys:
            blocks = tc.block_sizes(c, k)
            head = f"| {kernel} | {c}→{k} | {op} | {relu} | {str(dtype)[6:]} | {tuple(blocks)} |"
            try:
                compiled = tc.compile_ahead(kernel, dtype, c, k, relu, op, blocks, args.arch)
            except Exception as e:  # a compile error is the finding: report it
                print(f"{head} – | – | – | FAILED {type(e).__name__}: {str(e)[:100]} |")
                bad += 1
                continue
            ptx = compiled.asm["ptx"]  # type: ignore[attr-defined]
            shared = compiled.metadata.shared  # type: ignore[attr-defined]
            wgmma = "wgmma.mma_async" in ptx or args.arch != 90
            pipelined = "cp.async" in ptx
            ok = wgmma and pipelined and shared <= SHARED_BYTES[args.arch]
            bad += not ok
            print(
                f"{head} {shared / 1024:.0f} | {'yes' if wgmma else 'NO'} | "
                f"{'yes' if pipelined else 'NO'} | {'ok' if ok else 'FAILED'} |"
            )
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
