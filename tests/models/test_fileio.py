"""models.fileio: atomic writes and JSON results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.fileio import atomic_write, write_json


def test_write_json_is_atomic_readable_and_ends_with_a_newline(tmp_path: Path) -> None:
    out = tmp_path / "new" / "results.json"
    write_json(out, {"rows": [1.5, 2]}, indent=1)
    assert json.loads(out.read_text()) == {"rows": [1.5, 2]}
    assert out.read_text().endswith("\n")
    assert out.stat().st_mode & 0o777 == 0o644
    assert not list(out.parent.glob(".*.tmp"))


def test_a_failed_write_leaves_the_old_file_and_no_temporary_file(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    write_json(out, {"ok": True})

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(out, fail)
    assert json.loads(out.read_text()) == {"ok": True}
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(TypeError):
        write_json(out, {"x": object()})  # not JSON: the old file stays
    assert json.loads(out.read_text()) == {"ok": True}
