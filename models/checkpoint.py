"""Load and save generators: official CAST checkpoint directories and our safetensors format.

Official ``.pth`` files are read with ``torch.load(weights_only=True)`` only, so a pickle
carrying code is refused, never executed. Every problem raises :class:`CheckpointError` with
one line naming the file and what is wrong.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from models.errors import CheckpointError
from models.fileio import atomic_write, first_line
from models.generator import ARCHITECTURE, CASTGenerator

FORMAT = "cast-rt/generator"
FORMAT_VERSION = "1"
OFFICIAL_NETS = {"AE": "encoder", "Dec_B": "dec_b", "Dec_A": "dec_a"}
_MAX_LISTED = 4


def _describe(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    return shown + (f" (+{len(keys) - _MAX_LISTED} more)" if len(keys) > _MAX_LISTED else "")


def strip_module_prefix(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Remove a DataParallel/DDP ``module.`` prefix when every key carries it."""
    keys = list(state)
    if keys and all(k.startswith("module.") for k in keys):
        return {k[len("module.") :]: v for k, v in state.items()}
    return dict(state)


def check_state_dict(path: Path, state: Mapping[str, Tensor], module: nn.Module) -> None:
    """Raise if ``state`` does not have exactly ``module``'s keys and shapes."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise CheckpointError(f"{path}: missing keys {_describe(missing)}")
    if unexpected:
        raise CheckpointError(f"{path}: unexpected keys {_describe(unexpected)}")
    for key, ref in expected.items():
        got = state[key]
        if not isinstance(got, Tensor):
            raise CheckpointError(f"{path}: entry {key} is a {type(got).__name__}, not a tensor")
        if tuple(got.shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{path}: {key} has shape {list(got.shape)}, expected {list(ref.shape)}"
            )
        if not got.is_floating_point():
            raise CheckpointError(f"{path}: {key} has dtype {got.dtype}, expected a float tensor")


def read_pth_state_dict(path: Path) -> dict[str, Tensor]:
    """A plain state dict from an official ``.pth`` file, read safely (``weights_only=True``)."""
    if not path.exists():
        raise CheckpointError(f"{path}: file not found")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" in str(exc).lower() or "weights_only" in str(exc).lower():
            raise CheckpointError(
                f"{path}: refused: the pickle holds Python objects other than tensors "
                "(possible code); only plain state dicts are loaded"
            ) from None
        raise CheckpointError(f"{path}: not a PyTorch checkpoint ({first_line(exc)})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(
            f"{path}: truncated, corrupt or not a PyTorch checkpoint ({first_line(exc)})"
        ) from None
    except Exception as exc:  # torch.load raises many types for garbage input
        raise CheckpointError(
            f"{path}: cannot be read as a checkpoint ({first_line(exc)})"
        ) from None
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    if not all(isinstance(k, str) for k in obj):
        raise CheckpointError(f"{path}: state dict keys must be strings")
    return strip_module_prefix(obj)


def official_files(directory: Path, epoch: str = "latest") -> dict[str, Path]:
    """Paths of ``<epoch>_net_{AE,Dec_B,Dec_A}.pth``; AE and Dec_B must exist."""
    files = {net: directory / f"{epoch}_net_{net}.pth" for net in OFFICIAL_NETS}
    for net in ("AE", "Dec_B"):
        if not files[net].exists():
            found = sorted(p.name for p in directory.glob("*_net_*.pth"))
            hint = f" (found: {_describe(found)})" if found else " (no *_net_*.pth files there)"
            raise CheckpointError(
                f"{files[net]}: file not found; an official CAST checkpoint "
                f"directory needs {epoch}_net_AE.pth and {epoch}_net_Dec_B.pth{hint}"
            )
    if not files["Dec_A"].exists():
        del files["Dec_A"]
    return files


def load_official(
    directory: Path, epoch: str = "latest", with_photo_decoder: bool = True
) -> CASTGenerator:
    """A generator from an official CAST checkpoint directory (``latest_net_AE.pth`` etc.)."""
    files = official_files(directory, epoch)
    gen = CASTGenerator(with_photo_decoder=with_photo_decoder and "Dec_A" in files)
    for net, file in files.items():
        module = getattr(gen, OFFICIAL_NETS[net])
        if module is None:
            continue
        state = read_pth_state_dict(file)
        check_state_dict(file, state, module)
        module.load_state_dict(state, strict=True)
    gen.refresh_checkpoint_id()
    gen.provenance = {"kind": "official", "path": str(directory), "epoch": epoch}
    return gen


def save_generator(gen: CASTGenerator, path: str | os.PathLike[str], **metadata: Any) -> Path:
    """Write ``gen`` in our format: safetensors weights + JSON metadata, atomically.

    Extra keyword metadata (JSON-serialisable) is stored under ``user``.
    """
    p = Path(path)
    tensors: dict[str, Tensor] = {}
    for prefix in ("encoder", "dec_b", "dec_a"):
        module = getattr(gen, prefix)
        if module is None:
            continue
        for key, t in module.state_dict().items():
            tensors[f"{prefix}.{key}"] = t.detach().cpu().contiguous()
    try:
        user = json.dumps(metadata, sort_keys=True, default=str)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(
            f"{p}: metadata is not JSON-serialisable ({first_line(exc)})"
        ) from None
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": ARCHITECTURE,
        "has_dec_a": "1" if gen.dec_a is not None else "0",
        "checkpoint_id": gen.refresh_checkpoint_id(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "provenance": json.dumps(gen.provenance, sort_keys=True),
        "torch": torch.__version__,
        "user": user,
    }
    atomic_write(p, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    return p


def read_metadata(path: Path) -> dict[str, str]:
    """The metadata block of a safetensors file (raises CheckpointError if unreadable)."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: not a readable safetensors file ({first_line(exc)})"
        ) from None


def load_ours(path: Path, with_photo_decoder: bool = True) -> CASTGenerator:
    """A generator from a file written by :func:`save_generator`."""
    if not path.is_file():
        raise CheckpointError(f"{path}: file not found")
    meta = read_metadata(path)
    if meta.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a CAST-RT generator file (format {meta.get('format')!r})"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: unsupported format version {meta.get('format_version')!r}")
    if meta.get("architecture") != ARCHITECTURE:
        raise CheckpointError(f"{path}: unknown architecture {meta.get('architecture')!r}")
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: truncated or corrupt ({first_line(exc)})") from None
    has_a = meta.get("has_dec_a") == "1"
    gen = CASTGenerator(with_photo_decoder=with_photo_decoder and has_a)
    if not has_a:
        state_keys = [k for k in state if k.startswith("dec_a.")]
        if state_keys:
            raise CheckpointError(f"{path}: has Dec_A weights but metadata says it has none")
    for prefix in ("encoder", "dec_b", "dec_a"):
        module = getattr(gen, prefix)
        sub = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
        if module is None:
            continue
        check_state_dict(path, sub, module)
        module.load_state_dict(sub, strict=True)
    known = ("encoder.", "dec_b.", "dec_a.")
    stray = [k for k in state if not k.startswith(known)]
    if stray:
        raise CheckpointError(f"{path}: unexpected keys {_describe(stray)}")
    gen.refresh_checkpoint_id()
    try:
        gen.provenance = {
            str(k): str(v) for k, v in json.loads(meta.get("provenance", "{}")).items()
        }
    except (ValueError, AttributeError):
        raise CheckpointError(f"{path}: provenance metadata is malformed") from None
    gen.provenance.setdefault("path", str(path))
    return gen


def load_generator(
    path: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    *,
    epoch: str = "latest",
    with_photo_decoder: bool = True,
) -> CASTGenerator:
    """Load a generator from an official CAST checkpoint directory or a file in our format.

    ``epoch`` picks ``<epoch>_net_*.pth`` in an official directory (default ``latest``).
    The model is returned in eval mode on ``device``.
    """
    p = Path(path)
    if p.is_dir():
        gen = load_official(p, epoch, with_photo_decoder)
    elif p.is_file():
        if p.suffix == ".pth":
            raise CheckpointError(
                f"{p}: an official CAST checkpoint is a directory holding {epoch}_net_AE.pth and "
                f"{epoch}_net_Dec_B.pth; pass the directory ({p.parent})"
            )
        gen = load_ours(p, with_photo_decoder)
    else:
        raise CheckpointError(
            f"{p}: checkpoint not found (expected an official CAST directory "
            "or a .safetensors file from `castrt train export`)"
        )
    return gen.to(device).eval()
