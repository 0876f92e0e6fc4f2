"""Training checkpoints: every network, optimiser, queue, RNG state and the step, written atomically."""

from __future__ import annotations

import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.errors import CheckpointError
from models.fileio import atomic_write, first_line

STATE_FORMAT = "cast-rt/train-state"
STATE_VERSION = 1
STATE_FILE = "checkpoint.pt"


def _numpy_state() -> tuple[Any, ...]:
    """numpy's global RNG state with the key array as a tensor (loadable with weights_only)."""
    st: Any = np.random.get_state()
    name, keys, pos, has_gauss, cached = st
    return (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))


def rng_state() -> dict[str, Any]:
    """Global RNG states (torch CPU, CUDA if present, numpy, python)."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": _numpy_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_state(path: Path, state: dict[str, Any]) -> Path:
    """Write a training state dict atomically (a crash never leaves a half-written file)."""
    payload = {"format": STATE_FORMAT, "version": STATE_VERSION, **state}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))
    return path


def load_state(path: Path) -> dict[str, Any]:
    """Read a training state written by :func:`save_state`, with one-line errors."""
    if path.is_dir():
        path = path / STATE_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: no training checkpoint here (run `castrt train` first)")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)  # never runs pickled code
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused: holds Python objects other than tensors and plain data ({first_line(exc)})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(
            f"{path}: truncated or corrupt training checkpoint ({first_line(exc)})"
        ) from None
    if not isinstance(obj, dict) or obj.get("format") != STATE_FORMAT:
        raise CheckpointError(f"{path}: not a CAST-RT training checkpoint")
    if obj.get("version") != STATE_VERSION:
        raise CheckpointError(
            f"{path}: unsupported training checkpoint version {obj.get('version')!r}"
        )
    return obj
