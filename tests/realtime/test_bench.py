"""``castrt bench``: argument parsing, the table, the JSON file, the --pipeline hand-over."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.errors import InputError
from realtime.cli import main
from realtime.commands.bench import BenchRow, format_table, parse_choices, parse_sizes

ROOT = Path(__file__).resolve().parents[2]


def test_parse_sizes():
    assert parse_sizes("256x256, 640x360") == [(256, 256), (640, 360)]
    for bad in ["", "640", "axb", "4x4", "640x360x2"]:
        with pytest.raises(InputError, match="--sizes"):
            parse_sizes(bad)


def test_parse_choices():
    assert parse_choices("fp32,auto,fp32", ("auto", "fp32"), "--precision") == ["fp32", "auto"]
    with pytest.raises(InputError, match="--precision"):
        parse_choices("fp64", ("auto", "fp32"), "--precision")


def test_format_table():
    row = BenchRow("64x64", "naive", 10.0, 9.0, 100.0, 0.4, 512.0, 1.5, 1.0)
    table = format_table([row, BenchRow("64x64", "engine", 2.0, 1.9, 500.0, 2.0, 512, 0.1, 5.0)])
    assert table.splitlines()[0].startswith("| size | variant | median ms")
    assert "| 64x64 | engine | 2.0 | 1.9 | 500.0 | 2.000 | 512 | 0.10 | 5.00× | 0 |" in table


def test_bench_runs_and_writes_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(
        [
            "bench",
            "--untrained",
            "--device",
            "cpu",
            "--sizes",
            "24x16",
            "--precision",
            "fp32",
            "--pad-mode",
            "module,cat",
            "--naive",
            "nchw,nhwc",
            "--repeats",
            "1",
            "--batch",
            "2",
            "--json",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "| 24x16 | naive fp32 (host float) |" in text
    assert "engine fp32 pad=module" in text and "engine fp32 pad=cat" in text
    data = json.loads(out.read_text())
    assert data["flops_per_pixel"] == pytest.approx(0.965e6, rel=0.001)
    assert data["machine"]["device"] == "cpu"
    rows = data["rows"]
    assert [r["variant"].split(" [")[0] for r in rows] == [
        "naive fp32 (host float)",
        "naive fp32 (host float, NHWC strides)",
        "engine fp32 pad=module",
        "engine fp32 pad=cat",
    ]
    assert all(r["median_ms"] > 0 and r["fps"] > 0 and r["tflops"] > 0 for r in rows)
    assert rows[0]["speedup"] == 1.0


def test_bench_refuses_bad_options(capsys):
    assert main(["bench", "--untrained", "--sizes", "64"]) == 1
    assert "--sizes" in capsys.readouterr().err
    assert main(["bench", "--untrained", "--precision", "int4"]) == 1
    assert "--precision" in capsys.readouterr().err
