"""Small file helpers shared by checkpoints, style codes and writers."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Path], object], mode: int | None = None) -> None:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place.

    A crash or an exception leaves ``path`` untouched and no temporary file behind. ``mode``:
    the file's permissions (None: the temporary file's, 0600).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(
    path: Path,
    payload: object,
    indent: int = 2,
    default: Callable[[Any], object] | None = None,
) -> None:
    """Write ``payload`` as indented JSON (plus a newline) to ``path`` with
    :func:`atomic_write`, readable by all (0644) like a plain write; ``default`` converts what
    JSON cannot hold (``json.dumps``)."""
    text = json.dumps(payload, indent=indent, default=default) + "\n"
    atomic_write(path, lambda tmp: tmp.write_text(text), mode=0o644)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (for one-line user errors)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
