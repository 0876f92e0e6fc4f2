"""Checkpoint loading and saving: official directories, our format, every malformed case."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from models import CheckpointError, load_generator, save_generator
from models.checkpoint import FORMAT, read_pth_state_dict
from models.generator import CASTGenerator, untrained_generator

ROOT = Path(__file__).resolve().parents[2]


def copy_official(
    src: Path, dst: Path, epoch: str = "latest", nets: tuple[str, ...] = ("AE", "Dec_A", "Dec_B")
) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    for net in nets:
        shutil.copy(src / f"latest_net_{net}.pth", dst / f"{epoch}_net_{net}.pth")
    return dst


def same_weights(a: CASTGenerator, b: CASTGenerator) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_official_directory_loads_all_three_nets(upstream_dir: Path) -> None:
    gen = load_generator(upstream_dir)
    assert gen.dec_a is not None
    assert gen.provenance["kind"] == "official"
    assert len(gen.checkpoint_id) == 16
    state = torch.load(upstream_dir / "latest_net_Dec_B.pth", weights_only=True)
    assert torch.equal(gen.dec_b.state_dict()["decoder.28.weight"], state["decoder.28.weight"])


def test_dec_a_is_optional_and_epoch_selects_files(upstream_dir: Path, tmp_path: Path) -> None:
    d = copy_official(upstream_dir, tmp_path / "ck", epoch="200", nets=("AE", "Dec_B"))
    gen = load_generator(d, epoch="200")
    assert gen.dec_a is None
    with pytest.raises(
        CheckpointError, match=r"latest_net_AE\.pth: file not found.*found: 200_net_AE\.pth"
    ):
        load_generator(d)


def test_module_prefixed_state_dict_is_accepted(upstream_dir: Path, tmp_path: Path) -> None:
    d = copy_official(upstream_dir, tmp_path / "ck")
    state = torch.load(d / "latest_net_AE.pth", weights_only=True)
    torch.save({f"module.{k}": v for k, v in state.items()}, d / "latest_net_AE.pth")
    assert same_weights(load_generator(d), load_generator(upstream_dir))


def test_missing_directory_and_pth_file_instead_of_directory(
    upstream_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        load_generator(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="pass the directory"):
        load_generator(upstream_dir / "latest_net_AE.pth")


def test_truncated_file_is_refused(upstream_dir: Path, tmp_path: Path) -> None:
    d = copy_official(upstream_dir, tmp_path / "ck")
    data = (d / "latest_net_Dec_B.pth").read_bytes()
    (d / "latest_net_Dec_B.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        CheckpointError,
        match=r"latest_net_Dec_B\.pth: truncated, corrupt or not a PyTorch checkpoint",
    ):
        load_generator(d)


def test_non_checkpoint_file_is_refused(upstream_dir: Path, tmp_path: Path) -> None:
    d = copy_official(upstream_dir, tmp_path / "ck")
    (d / "latest_net_AE.pth").write_text("this is not a checkpoint\n")
    with pytest.raises(CheckpointError, match=r"latest_net_AE\.pth: "):
        load_generator(d)


def test_wrong_key_and_wrong_shape_are_named(upstream_dir: Path, tmp_path: Path) -> None:
    d = copy_official(upstream_dir, tmp_path / "ck")
    state = torch.load(d / "latest_net_AE.pth", weights_only=True)
    renamed = dict(state)
    renamed["enc_9.weight"] = renamed.pop("enc_4.11.weight")
    torch.save(renamed, d / "latest_net_AE.pth")
    with pytest.raises(
        CheckpointError, match=r"latest_net_AE\.pth: missing keys enc_4\.11\.weight"
    ):
        load_generator(d)
    reshaped = dict(state)
    reshaped["enc_1.2.weight"] = torch.zeros(64, 3, 5, 5)
    torch.save(reshaped, d / "latest_net_AE.pth")
    with pytest.raises(
        CheckpointError,
        match=r"enc_1\.2\.weight has shape \[64, 3, 5, 5\], expected \[64, 3, 3, 3\]",
    ):
        load_generator(d)


def test_extra_key_is_refused(upstream_dir: Path, tmp_path: Path) -> None:
    d = copy_official(upstream_dir, tmp_path / "ck")
    state = torch.load(d / "latest_net_Dec_B.pth", weights_only=True)
    state["decoder.99.weight"] = torch.zeros(1)
    torch.save(state, d / "latest_net_Dec_B.pth")
    with pytest.raises(CheckpointError, match=r"unexpected keys decoder\.99\.weight"):
        load_generator(d)


class _Evil:
    """Unpickling this would create a marker file (it must never happen)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_pickle_carrying_code_is_refused_and_not_executed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "latest_net_AE.pth"
    torch.save({"enc_1.0.weight": torch.zeros(3, 3, 1, 1), "payload": _Evil(str(marker))}, path)
    with pytest.raises(
        CheckpointError, match="refused: the pickle holds Python objects other than tensors"
    ):
        read_pth_state_dict(path)
    assert not marker.exists()


def test_non_dict_checkpoint_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.pth"
    torch.save([torch.zeros(1)], path)
    with pytest.raises(CheckpointError, match="holds a list, not a state dict"):
        read_pth_state_dict(path)


def test_our_format_round_trips_bit_exactly(tmp_path: Path) -> None:
    gen = untrained_generator(seed=3)
    path = save_generator(gen, tmp_path / "m.safetensors", note="unit test", steps=12)
    back = load_generator(path)
    assert same_weights(gen, back)
    assert back.checkpoint_id == gen.checkpoint_id
    assert back.provenance["kind"] == "untrained"
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == FORMAT and meta["architecture"] == "cast-generator-v1"
    assert '"steps": 12' in meta["user"] and meta["created"].endswith("+00:00")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic write leaves no temporary file


def test_our_format_without_dec_a(tmp_path: Path) -> None:
    gen = untrained_generator(seed=1, with_photo_decoder=False)
    back = load_generator(save_generator(gen, tmp_path / "m.safetensors"))
    assert back.dec_a is None and same_weights(gen, back)


def test_our_format_corrupt_and_foreign_files(tmp_path: Path) -> None:
    path = save_generator(untrained_generator(seed=2), tmp_path / "m.safetensors")
    data = path.read_bytes()
    bad = tmp_path / "trunc.safetensors"
    bad.write_bytes(data[: len(data) // 3])
    with pytest.raises(CheckpointError, match=r"trunc\.safetensors: "):
        load_generator(bad)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(
        CheckpointError, match=r"junk\.safetensors: not a readable safetensors file"
    ):
        load_generator(junk)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CheckpointError, match="not a CAST-RT generator file"):
        load_generator(foreign)


def test_cli_reports_bad_checkpoint_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "ck"
    bad.mkdir()
    (bad / "latest_net_AE.pth").write_text("garbage")
    (bad / "latest_net_Dec_B.pth").write_text("garbage")
    img = tmp_path / "in.png"
    from realtime.images import write_image

    write_image(img, torch.zeros(8, 8, 3, dtype=torch.uint8).numpy())
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "realtime.cli",
            "stylize",
            "--checkpoint",
            str(bad),
            "--style",
            str(img),
            str(img),
            "-o",
            str(tmp_path / "o.png"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "latest_net_AE.pth" in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "o.png").exists()
