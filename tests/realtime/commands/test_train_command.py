"""``castrt train``: one-line errors for bad data folders; export round trip into load_generator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from models.checkpoint import load_generator
from realtime.cli import main
from realtime.commands.train import export_generator, export_official
from tests.models.training.trainhelp import make_folder, tiny_config

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "folder not found"),
        ("empty", "folder is empty"),
        ("text", "no image files"),
        ("broken", "none of the 1 image files is usable"),
    ],
)
def test_bad_content_folder_is_one_line_error(
    tmp_path: Path, setup: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    content = tmp_path / "content"
    if setup != "missing":
        content.mkdir()
    if setup == "text":
        (content / "readme.txt").write_text("x")
    if setup == "broken":
        (content / "x.jpg").write_bytes(b"garbage")
    style = make_folder(tmp_path / "style", 1, seed=0)
    code = main(
        ["train", "--content", str(content), "--style", str(style), "--out", str(tmp_path / "run")]
    )
    err = capsys.readouterr().err
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "--content" in lines[0], err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_bad_config_key_and_export_without_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    style = make_folder(tmp_path / "style", 1, seed=0)
    args = ["--content", str(style), "--style", str(style), "--out", str(tmp_path / "r")]
    assert main(["train", *args, "--set", "loss.nope=1"]) == 1
    assert "unknown key" in capsys.readouterr().err
    assert (
        main(["train", "export", str(tmp_path / "r"), "-o", str(tmp_path / "m.safetensors")]) == 1
    )
    assert "no training checkpoint" in capsys.readouterr().err


def test_help_lists_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["train", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--content" in out and "--resume" in out


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_export_round_trip(tmp_path: Path) -> None:
    from models.training.trainer import Trainer

    a = make_folder(tmp_path / "a", 1, seed=0)
    t = Trainer(tiny_config(steps=1), a, a, tmp_path / "run", progress=False)
    t.save()
    out = export_generator(tmp_path / "run", tmp_path / "model.safetensors")
    gen = load_generator(out)
    assert gen.dec_a is not None
    torch.testing.assert_close(
        gen.encoder.state_dict()["enc_4.11.weight"], t.nets.ae.state_dict()["enc_4.11.weight"]
    )
    torch.testing.assert_close(
        gen.dec_b.state_dict()["decoder.1.weight"], t.nets.dec_b.state_dict()["decoder.1.weight"]
    )
    official = export_official(tmp_path / "run", tmp_path / "official")
    assert sorted(p.name for p in official)[0] == "latest_net_AE.pth"
    gen2 = load_generator(tmp_path / "official")
    torch.testing.assert_close(
        gen2.dec_b.state_dict()["decoder.28.bias"], t.nets.dec_b.state_dict()["decoder.28.bias"]
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_sigterm_saves_a_checkpoint_and_stops(tmp_path: Path) -> None:
    import signal
    import time

    a = make_folder(tmp_path / "a", 1, seed=0)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "realtime.cli", "train", "--config", "configs/train/tiny.yaml",
         "--content", str(a), "--style", str(a), "--out", str(out), "--steps", "1000",
         "--crop", "32", "--no-progress", "--set", "loss.code_dim=64", "--set", "loss.queue_size=8",
         "--set", "save_every=1000", "--set", "data.num_workers=1"],
        cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.time() + 240
    while not (out / "log.csv").exists() and time.time() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err[-2000:]
    assert "checkpoint saved" in err
    state = torch.load(out / "checkpoint.pt", weights_only=False)
    assert 1 <= state["step"] < 1000
