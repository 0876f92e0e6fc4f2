"""Overfitting one content/style pair lowers the cycle and contrastive losses."""

from __future__ import annotations

from pathlib import Path

import pytest
from trainhelp import make_folder, tiny_config

from models.training.trainer import Trainer


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_overfit_one_pair_lowers_cycle_and_contrastive(tmp_path: Path) -> None:
    content = make_folder(tmp_path / "a", 1, seed=1)
    style = make_folder(tmp_path / "b", 1, seed=2)
    cfg = tiny_config(
        steps=24,
        **{"optim.lr_g": 1e-3, "optim.lr_d_nce": 1e-3, "data.flip": False, "data.load_size": 32},
    )
    history: list[dict[str, float]] = []
    Trainer(cfg, content, style, tmp_path / "run", progress=False).run(
        on_step=lambda step, losses: history.append(losses)
    )

    def mean(key: str, part: slice) -> float:
        vals = [h[key] for h in history[part]]
        return sum(vals) / len(vals)

    head, tail = slice(0, 4), slice(-4, None)
    assert mean("cyc", tail) < 0.8 * mean("cyc", head)
    assert mean("NCE_D", tail) < mean("NCE_D", head)
    assert mean("G_NCE_style", tail) < mean("G_NCE_style", head)
