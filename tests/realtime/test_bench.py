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


def test_parse_variant_builds_engine_configs():
    import argparse

    import torch

    from realtime.commands.bench import parse_variant

    args = argparse.Namespace(resolution=360, threads=2)
    cfg = parse_variant(
        "precision=fp32, pad-mode=border,fuse_relu=on,streams=off", torch.device("cpu"), args
    )
    assert (cfg.precision, cfg.pad_mode, cfg.fuse_relu, cfg.streams) == (
        "fp32",
        "border",
        "on",
        False,
    )
    assert (cfg.resolution, cfg.threads, cfg.device) == (360, 2, "cpu")
    for bad, match in [
        ("precision", "KEY=VALUE"),
        ("colour=red", "KEY=VALUE"),
        ("device=cuda", "KEY=VALUE"),
        ("resolution=big", "integer"),
        ("streams=maybe", "on or off"),
        ("pad_mode=mirror", "pad_mode"),
        ("cuda_graph=on,compile=reduce-overhead", "pick one"),
    ]:
        with pytest.raises(InputError, match=match):
            parse_variant(bad, torch.device("cpu"), args)


def test_bench_variants_and_a_failing_variant_is_reported(tmp_path, capsys, monkeypatch):
    from realtime.commands import bench as bench_mod

    real = bench_mod.engine_runner

    def runner(engine, code):
        if engine.pad_mode == "border":

            def broken(frames):
                raise RuntimeError("no kernel for this\nsecond line")

            return broken
        return real(engine, code)

    monkeypatch.setattr(bench_mod, "engine_runner", runner)
    out = tmp_path / "b.json"
    argv = ["bench", "--untrained", "--sizes", "24x16", "--repeats", "1", "--no-naive"]
    argv += [
        "--variant",
        "precision=fp32,pad_mode=cat",
        "--variant",
        "precision=fp32,pad_mode=border",
    ]
    assert main([*argv, "--json", str(out)]) == 1  # a variant failed: non-zero, others reported
    text = capsys.readouterr().out
    assert "engine fp32 pad=cat" in text
    assert "FAILED 24x16 engine fp32 pad=border" in text and "no kernel for this" in text
    assert "second line" not in text
    data = json.loads(out.read_text())
    assert [r["variant"].split(" [")[0] for r in data["rows"]] == ["engine fp32 pad=cat"]
    assert len(data["failures"]) == 1 and data["rows"][0]["gpu_ms"] == 0.0
