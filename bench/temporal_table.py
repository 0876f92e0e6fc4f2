"""Markdown table from JSON reports of ``castrt eval temporal`` (bench/results/temporal/).

Rows are keyed by (clip, strategy); a later file's row replaces an earlier one (used to fold
re-runs of some strategies into a full run; E_warp ratios are always to ``off`` of the same run).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def rows(paths: list[Path]) -> dict[tuple[str, str], tuple[int, dict[str, Any], str]]:
    out: dict[tuple[str, str], tuple[int, dict[str, Any], str]] = {}
    for p in paths:
        rep = json.loads(p.read_text())
        clip = Path(rep["video"]).stem
        for r in rep["results"]:
            out[(clip, r["strategy"])] = (rep["frames"], r, p.name)
    return out


def table(paths: list[Path]) -> str:
    """One row per (clip, strategy): E_warp ratio, flicker, PSNR, SSIM, overhead, source."""
    lines = [
        "| clip | frames | strategy | E_warp | ×off | flicker | PSNR dB | SSIM | run |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for (clip, name), (frames, r, src) in rows(paths).items():
        psnr = r.get("psnr", float("inf"))
        p = "∞" if psnr == float("inf") else f"{psnr:.1f}"
        lines.append(
            f"| {clip} | {frames} | {name} | {r['e_warp']:.5f} | {r['e_warp_ratio']:.2f} | "
            f"{r['flicker']:.2f} | {p} | {r.get('ssim', 1.0):.3f} | {src} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(table([Path(a) for a in sys.argv[1:]]))
