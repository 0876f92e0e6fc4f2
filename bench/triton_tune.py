"""Tile sizes for the Triton conv kernels: every layer of the network, a few launch configs.

Run from the repository root on a CUDA machine (``bench/gpu_check.sh --tune`` does)::

    python bench/triton_tune.py --size 1920x1080 --json triton_tune.json

Each Triton layer of the engine's network (``conv_impl=triton``, both the plain and the
phase upsampling layers) is run on its real input shape at that frame size with the default
configuration (``realtime.triton_conv.block_sizes``) and with each candidate from
:data:`CANDIDATES` that fits the layer; the device time (median of ``--reps`` CUDA-event
timings after a compile run) is printed per layer, with the best candidate and the network
totals. A candidate that fails to launch (e.g. too much shared memory) is reported and
skipped. ``--device cpu`` rehearses the script in Triton's interpreter (tiny sizes only).
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models import functional as Fn
from models.errors import InputError
from models.fileio import write_json
from models.generator import untrained_generator
from realtime.commands.bench import parse_sizes


@dataclass
class LayerResult:
    """One layer's timings: default configuration, the best candidate, every candidate."""

    layer: str
    input_shape: tuple[int, ...]
    runs: dict[str, int]  # network → how often the layer runs in it
    default: str
    default_ms: float
    best: str
    best_ms: float
    candidates_ms: dict[str, float | None]  # None: failed to launch


def _time(fn: Callable[[], Tensor], reps: int, cuda: bool) -> float:
    """Median ms of ``fn`` after one untimed run (which compiles the kernel)."""
    fn()
    times = []
    for _ in range(reps):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", default="1920x1080", help="frame size WxH (default 1920x1080)")
    p.add_argument("--precision", default="fp16", choices=("fp16", "bf16", "fp32"))
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--max-configs", type=int, default=0, help="candidates per layer (0: all)")
    p.add_argument("--json")
    p.add_argument("--device", default="cuda", help="cuda (cpu: a rehearsal in the interpreter)")
    args = p.parse_args()
    cuda = args.device != "cpu"
    if cuda and not torch.cuda.is_available():
        print("triton_tune: needs a CUDA device", file=sys.stderr)
        return 1
    if not cuda:
        os.environ.setdefault("TRITON_INTERPRET", "1")  # before triton is imported
    try:
        ((w, h),) = parse_sizes(args.size)
    except (InputError, ValueError):
        print(f"triton_tune: --size takes one WxH, got {args.size!r}", file=sys.stderr)
        return 1
    from realtime import triton_conv as tc

    dev = torch.device(args.device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[args.precision]
    nets = tc.triton_networks(untrained_generator(0, with_photo_decoder=False))
    # the input of every Triton layer, recorded on one run of the network at this size
    calls: dict[tuple[object, ...], tuple[nn.Module, Tensor, Counter[str]]] = {}

    def recorder(net: str) -> Callable[[nn.Module, tuple[Tensor, ...]], None]:
        def hook(m: nn.Module, inp: tuple[Tensor, ...]) -> None:
            key = (type(m).__name__, getattr(m, "input_op", "up2"), tuple(inp[0].shape), m.relu)
            if key not in calls:
                calls[key] = (m, inp[0].detach().clone(), Counter())
            calls[key][2][net] += 1

        return hook

    hh, ww = h + sum(Fn.pad_amounts(h, w)[2:]), w + sum(Fn.pad_amounts(h, w)[:2])
    x = torch.rand(1, 3, hh, ww, device=dev).to(dtype).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for name, net in nets.items():
            net.to(device=dev, dtype=dtype)
            for m in net:
                if isinstance(m, tc.TritonReflectConv | tc.TritonUpConv):
                    m.register_forward_pre_hook(recorder(name))
        feat = nets["encoder"](x)
        nets["decoder"](feat)
        nets["decoder-phases"](feat)

    device_name = torch.cuda.get_device_name() if cuda else "cpu"
    print(f"Triton conv layers at {w}x{h}, {args.precision}, {device_name}")
    print("| layer | input | runs | default ms | best ms | best (m, n, k, warps, stages) |")
    print("|---|---|---|---:|---:|---|")
    rows: list[LayerResult] = []
    for key, (m, inp, layer_runs) in calls.items():
        c, k = int(inp.shape[1]), int(m.get_parameter("bias").shape[0])
        default = tc.block_sizes(c, k)
        fits = [
            b
            for b in tc.CANDIDATES
            if b != default and b.k <= c and c % b.k == 0 and b.n <= max(16, 2 * k)
        ]
        if args.max_configs:
            fits = fits[: args.max_configs]

        def run(b: tc.Blocks, m: nn.Module = m, inp: Tensor = inp) -> Tensor:
            if isinstance(m, tc.TritonUpConv):
                return tc.up2_phase_conv(inp, m.w_phases, m.bias, m.relu, b)
            assert isinstance(m, tc.TritonReflectConv)
            return tc.reflect_conv3x3(inp, m.w_mat, m.bias, m.relu, m.input_op, b)

        times: dict[str, float | None] = {}
        with torch.inference_mode():
            for b in [default, *fits]:
                try:
                    times[str(tuple(b))] = _time(functools.partial(run, b), args.reps, cuda)
                except Exception as e:  # a config that cannot launch: report, go on
                    times[str(tuple(b))] = None
                    print(f"  {key}: {tuple(b)} failed: {type(e).__name__}: {str(e)[:120]}")
        ok = {n: t for n, t in times.items() if t is not None}
        best = min(ok, key=lambda n: ok[n]) if ok else "none"
        r = LayerResult(
            f"{key[0]}({key[1]}) {c}->{k}", tuple(inp.shape), dict(layer_runs),
            str(tuple(default)), times[str(tuple(default))] or float("nan"), best,
            ok.get(best, float("nan")), times,
        )  # fmt: skip
        rows.append(r)
        where = ", ".join(f"{n} {c}" for n, c in r.runs.items())
        print(
            f"| {r.layer} | {'x'.join(map(str, r.input_shape))} | {where} | {r.default_ms:.3f} | "
            f"{r.best_ms:.3f} | {r.best} |",
            flush=True,
        )
        if args.json:  # after every layer, so a run cut off by a time limit keeps its rows
            write_json(Path(args.json), {"size": f"{w}x{h}", "precision": args.precision,
                       "device": device_name, "rows": [asdict(r) for r in rows]}, indent=1)  # fmt: skip
    for dec in ("decoder", "decoder-phases"):  # per frame: each layer times its runs
        times_run = {id(r): r.runs.get("encoder", 0) + r.runs.get(dec, 0) for r in rows}
        print(
            f"encoder + {dec}, Triton layers per frame: default "
            f"{sum(r.default_ms * times_run[id(r)] for r in rows):.2f} ms, best per layer "
            f"{sum(r.best_ms * times_run[id(r)] for r in rows):.2f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
