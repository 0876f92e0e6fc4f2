"""``StyleCode``: a style image reduced to its relu4_1 channel statistics, with provenance.

A code is computed once per style image and reused for every frame. It saves to and loads
from a small safetensors file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from models import functional as Fn
from models.errors import StyleCodeError
from models.fileio import atomic_write, first_line

CODE_FORMAT = "cast-rt/style-code"
CODE_VERSION = "1"


@dataclass(frozen=True)
class StyleCode:
    """relu4_1 channel mean and std of a style, (1, 512, 1, 1) each, and where it came from.

    ``source`` names the origin (a file's SHA-256, ``tensor``, or a mix); ``size`` is the
    (H, W) the style was encoded at; ``checkpoint_id`` identifies the encoder that made it.
    """

    mean: Tensor
    std: Tensor
    source: str = "tensor"
    size: tuple[int, int] = (0, 0)
    checkpoint_id: str = "unknown"
    name: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (
            self.mean.shape != self.std.shape
            or self.mean.dim() != 4
            or self.mean.shape[2:] != (1, 1)
        ):
            raise StyleCodeError(
                f"style code statistics must be (B, C, 1, 1) and equal in shape, got "
                f"{tuple(self.mean.shape)} and {tuple(self.std.shape)}"
            )

    @property
    def channels(self) -> int:
        return int(self.mean.shape[1])

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> StyleCode:
        """The same code with its statistics on ``device`` (and ``dtype`` if given)."""
        return dataclasses.replace(
            self,
            mean=self.mean.to(device=device, dtype=dtype),
            std=self.std.to(device=device, dtype=dtype),
        )

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the code as safetensors + metadata, atomically."""
        meta = {
            "format": CODE_FORMAT,
            "format_version": CODE_VERSION,
            "source": self.source,
            "size": json.dumps(list(self.size)),
            "checkpoint_id": self.checkpoint_id,
            "name": self.name,
            "extra": json.dumps(self.extra),
        }
        tensors = {
            "mean": self.mean.detach().float().cpu().contiguous(),
            "std": self.std.detach().float().cpu().contiguous(),
        }
        atomic_write(Path(path), lambda tmp: save_file(tensors, str(tmp), metadata=meta))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> StyleCode:
        """Read a code written by :meth:`save`; raises :class:`StyleCodeError` on any problem."""
        p = Path(path)
        if not p.is_file():
            raise StyleCodeError(f"{p}: style code file not found")
        try:
            tensors = load_file(str(p))
            with safe_open(str(p), framework="pt") as f:
                meta = f.metadata() or {}
        except (SafetensorError, OSError, ValueError) as exc:
            raise StyleCodeError(f"{p}: not a readable style code ({first_line(exc)})") from None
        if meta.get("format") != CODE_FORMAT:
            raise StyleCodeError(f"{p}: not a CAST-RT style code (format {meta.get('format')!r})")
        if set(tensors) != {"mean", "std"}:
            raise StyleCodeError(
                f"{p}: style code must hold 'mean' and 'std', found {sorted(tensors)}"
            )
        try:
            size = tuple(int(v) for v in json.loads(meta.get("size", "[0, 0]")))
            extra = json.loads(meta.get("extra", "{}"))
        except (ValueError, TypeError):
            raise StyleCodeError(f"{p}: style code metadata is malformed") from None
        return cls(
            mean=tensors["mean"],
            std=tensors["std"],
            source=meta.get("source", "unknown"),
            size=(size[0], size[1]) if len(size) == 2 else (0, 0),
            checkpoint_id=meta.get("checkpoint_id", "unknown"),
            name=meta.get("name", ""),
            extra=extra,
        )


def interpolate_codes(codes: Sequence[StyleCode], weights: Sequence[float]) -> StyleCode:
    """Mix several codes with weights (normalised to sum 1); equals mixing AdaIN features."""
    if not codes:
        raise StyleCodeError("need at least one style code to interpolate")
    ids = {c.checkpoint_id for c in codes}
    if len(ids) > 1:
        raise StyleCodeError(f"cannot mix style codes from different checkpoints: {sorted(ids)}")
    try:
        mean, std = Fn.interpolate_stats([c.mean for c in codes], [c.std for c in codes], weights)
    except ValueError as exc:
        raise StyleCodeError(str(exc)) from None
    w = Fn.normalize_weights(weights, len(codes))
    return StyleCode(
        mean=mean,
        std=std,
        source="mix(" + ",".join(f"{c.source}:{wi:.4g}" for c, wi in zip(codes, w)) + ")",
        size=codes[0].size,
        checkpoint_id=codes[0].checkpoint_id,
        name="+".join(c.name or c.source[:8] for c in codes),
    )
