"""Markdown tables from the JSON reports of ``castrt eval temporal`` (bench/results/temporal/)."""

from __future__ import annotations

import json
import sys
from pathlib import Path


def table(paths: list[Path]) -> str:
    """One row per (clip, strategy): E_warp ratio, flicker, PSNR, SSIM, overhead."""
    lines = [
        "| clip | frames | strategy | E_warp | ×off | flicker | PSNR dB | SSIM | overhead ms |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for p in paths:
        rep = json.loads(p.read_text())
        clip = Path(rep["video"]).stem
        for r in rep["results"]:
            psnr = r.get("psnr", float("inf"))
            lines.append(
                f"| {clip} | {rep['frames']} | {r['strategy']} | {r['e_warp']:.5f} | "
                f"{r['e_warp_ratio']:.2f} | {r['flicker']:.2f} | "
                f"{'∞' if psnr == float('inf') else f'{psnr:.1f}'} | {r.get('ssim', 1.0):.3f} | "
                f"{r['overhead_ms_median']:.1f} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table([Path(a) for a in sys.argv[1:]]))
