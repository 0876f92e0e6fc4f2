"""Exact resume: k steps + resume + k steps == 2k steps (CPU, fp32), and checkpoint contents."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from models.errors import CheckpointError, InputError
from models.training.state import load_state
from models.training.trainer import Trainer
from tests.models.training.trainhelp import make_folder, tiny_config


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("data")
    return make_folder(root / "a", 3, seed=1), make_folder(root / "b", 2, seed=2)


def _train(folders: tuple[Path, Path], out: Path, steps: int, resume: bool = False) -> Trainer:
    cfg = tiny_config(steps=steps, batch_size=2)
    t = Trainer(cfg, folders[0], folders[1], out, resume=resume, progress=False)
    t.run()
    return t


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_resume_equals_uninterrupted(folders: tuple[Path, Path], tmp_path: Path) -> None:
    _train(folders, tmp_path / "straight", 2)
    _train(folders, tmp_path / "split", 1)
    first = load_state(tmp_path / "split")
    assert first["step"] == 1
    _train(folders, tmp_path / "split", 2, resume=True)
    a, b = load_state(tmp_path / "straight"), load_state(tmp_path / "split")
    assert a["step"] == b["step"] == 2
    for net in a["nets"]:
        for key, t in a["nets"][net].items():
            assert torch.equal(t, b["nets"][net][key]), f"{net}.{key}"
    for key, t in a["queues"].items():
        assert torch.equal(t, b["queues"][key]), key
    for name, opt in a["optimizers"].items():
        for pid, st in opt["state"].items():
            for k, v in st.items():
                assert torch.equal(v, b["optimizers"][name]["state"][pid][k]), f"{name}.{pid}.{k}"
    # the log continues where it stopped
    rows = (tmp_path / "split" / "log.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_existing_run_needs_resume_and_same_batch(
    folders: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    t = Trainer(tiny_config(steps=1), folders[0], folders[1], out, progress=False)
    t.save()
    st = load_state(out)
    assert set(st["nets"]) == {"AE", "Dec_A", "Dec_B", "D", "P_style", "D_A", "D_B"}
    assert set(st["optimizers"]) == {"G", "D", "D_NCE"} and "rng" in st
    with pytest.raises(InputError, match="--resume"):
        Trainer(tiny_config(steps=1), folders[0], folders[1], out, progress=False)
    with pytest.raises(CheckpointError, match="global batch"):
        Trainer(
            tiny_config(steps=1, batch_size=2),
            folders[0],
            folders[1],
            out,
            resume=True,
            progress=False,
        )
