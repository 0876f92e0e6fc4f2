"""Training data: folder checks, skipped files, odd image modes, resumable deterministic samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models.errors import InputError
from models.training.config import DataConfig
from models.training.data import StepBatchSampler, UnalignedPairs, augment, scan_images
from tests.models.training.trainhelp import make_folder


def test_missing_empty_and_imageless_folders(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"--content .*folder not found"):
        scan_images(tmp_path / "nope", "content", 32)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="folder is empty"):
        scan_images(tmp_path / "empty", "content", 32)
    txt = tmp_path / "txt"
    txt.mkdir()
    (txt / "notes.txt").write_text("hi")
    with pytest.raises(InputError, match=r"--style .*no image files"):
        scan_images(txt, "style", 32)


def test_all_unreadable_is_an_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jpg").write_bytes(b"not a jpeg at all")
    (bad / "b.png").write_bytes(b"")
    with pytest.raises(InputError, match="none of the 2 image files is usable"):
        scan_images(bad, "style", 32)


def test_unreadable_and_tiny_files_are_skipped_and_listed(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "mix", 2, seed=0)
    (root / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    Image.new("RGB", (8, 8)).save(root / "tiny.png")
    found = scan_images(root, "content", 32)
    assert [p.name for p in found.paths] == ["img_00.png", "img_01.png"]
    reasons = {p.name: why for p, why in found.skipped}
    assert set(reasons) == {"broken.jpg", "tiny.png"}
    assert "too small" in reasons["tiny.png"]


def test_odd_modes_are_converted(tmp_path: Path) -> None:
    root = tmp_path / "modes"
    root.mkdir()
    rgb = np.random.default_rng(0).integers(0, 255, (40, 40, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(root / "cmyk.jpg")
    Image.fromarray(rgb).convert("RGBA").save(root / "rgba.png")
    Image.fromarray(rgb).convert("P").save(root / "palette.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(root / "gray16.png")
    found = scan_images(root, "style", 32)
    cfg = DataConfig(load_size=36, crop_size=32, num_workers=0)
    ds = UnalignedPairs(found, found, cfg, seed=0)
    for g in range(len(found.paths)):
        item = ds[g]
        assert item["A"].shape == (3, 32, 32) and item["B"].shape == (3, 32, 32)
        assert item["A"].min() >= -1 and item["A"].max() <= 1


def test_samples_are_a_function_of_seed_and_index(tmp_path: Path) -> None:
    a = scan_images(make_folder(tmp_path / "a", 3, seed=1), "content", 32)
    b = scan_images(make_folder(tmp_path / "b", 5, seed=2), "style", 32)
    cfg = DataConfig(load_size=40, crop_size=32, num_workers=0)
    ds1, ds2 = UnalignedPairs(a, b, cfg, seed=7), UnalignedPairs(a, b, cfg, seed=7)
    assert len(ds1) == 5  # max(|A|, |B|)
    for g in (0, 4, 11, 3):  # any order, across epochs
        torch.testing.assert_close(ds1[g]["B"], ds2[g]["B"])
        torch.testing.assert_close(ds1[g]["A"], ds2[g]["A"])
    other = UnalignedPairs(a, b, cfg, seed=8)
    assert not all(torch.equal(ds1[g]["B"], other[g]["B"]) for g in range(5))


def test_decay_phase_resizes_to_crop(tmp_path: Path) -> None:
    a = scan_images(make_folder(tmp_path / "a", 1, seed=1, size=(64, 64)), "content", 32)
    cfg = DataConfig(load_size=64, crop_size=32, flip=False, num_workers=0)
    ds = UnalignedPairs(a, a, cfg, seed=0, decay_from_sample=1)
    whole = augment(
        np.asarray(Image.open(a.paths[0]).convert("RGB")), 32, 32, False, torch.Generator()
    )
    torch.testing.assert_close(ds[1]["A"], whole)  # no crop once decaying


def test_process_slices_cover_the_single_process_batch() -> None:
    single = list(StepBatchSampler(3, 5, batch=4))
    r0 = list(StepBatchSampler(3, 5, batch=2, rank=0, world=2))
    r1 = list(StepBatchSampler(3, 5, batch=2, rank=1, world=2))
    assert single == [[12, 13, 14, 15], [16, 17, 18, 19]]
    assert [x + y for x, y in zip(r0, r1)] == single
