"""A training run logs CSV rows, PNG grids (content | style | output) and TensorBoard events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.training.trainer import Trainer
from realtime.images import read_image
from tests.models.training.trainhelp import make_folder, tiny_config


@pytest.mark.slow
def test_run_writes_csv_png_grid_and_tensorboard(tmp_path: Path) -> None:
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="tensorboard is part of the dev extra",
    )
    a = make_folder(tmp_path / "a", 2, seed=1)
    b = make_folder(tmp_path / "b", 2, seed=2)
    cfg = tiny_config(steps=2, batch_size=1, image_every=1)
    Trainer(cfg, a, b, tmp_path / "run", progress=False).run()

    rows = (tmp_path / "run" / "log.csv").read_text().strip().splitlines()
    header = rows[0].split(",")
    assert {"step", "images_per_s", "D", "NCE_D", "G", "cyc"} <= set(header)
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]

    grid = read_image(tmp_path / "run" / "images" / "step_0000002.png")
    assert grid.shape[0] == 32 and grid.shape[1] >= 3 * 32  # content | style | output side by side

    acc = event_accumulator.EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    tags = acc.Tags()
    assert {"D", "NCE_D", "G", "cyc", "images_per_s"} <= set(tags["scalars"])
    assert [e.step for e in acc.Scalars("cyc")] == [1, 2]
    assert np.isfinite([e.value for e in acc.Scalars("G")]).all()
    assert "content|style|output" in tags["images"]
