"""Training data: unaligned (content photo, style artwork) pairs with resumable randomness.

Every random choice for global sample ``g`` (which artwork, crop offsets, flip) comes from a
generator seeded by ``(seed, g)``, and the content order of each epoch from ``(seed, epoch)``.
So resuming at step s only needs s (no worker RNG state), and N processes that each take a
slice of a global batch see exactly the samples one process with that global batch would.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from models.errors import InputError
from models.fileio import first_line
from models.training.config import DataConfig
from realtime.images import is_image_path, read_image


def mix_seed(*parts: int | str) -> int:
    """A 63-bit seed from a tuple (stable across processes and Python runs)."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass(frozen=True)
class ImageList:
    """The usable images of one folder and what was skipped (path, reason)."""

    role: str
    root: Path
    paths: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]


def _check_image(path: Path, min_side: int) -> str | None:
    """None if ``path`` looks usable, else why not (header read only, cheap)."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as img:
                w, h = img.size
    except UnidentifiedImageError:
        return "not an image (format not recognised)"
    except (OSError, ValueError, SyntaxError) as exc:
        return f"unreadable ({first_line(exc)})"
    if min(w, h) < min_side:
        return f"too small ({w}×{h}; shorter side must be >= {min_side})"
    return None


def scan_images(root: Path, role: str, min_side: int) -> ImageList:
    """Image files under ``root`` (recursive, sorted); clear errors for unusable folders."""
    flag = f"--{role}"
    if not root.exists():
        raise InputError(f"{flag} {root}: folder not found")
    if not root.is_dir():
        raise InputError(f"{flag} {root}: not a folder")
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise InputError(f"{flag} {root}: folder is empty")
    candidates = [p for p in files if is_image_path(p)]
    if not candidates:
        raise InputError(
            f"{flag} {root}: no image files ({len(files)} other files; expected .jpg, .png, …)"
        )
    good: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for p in candidates:
        why = _check_image(p, min_side)
        if why is None:
            good.append(p)
        else:
            skipped.append((p, why))
    if not good:
        first = f"{skipped[0][0].name}: {skipped[0][1]}"
        raise InputError(
            f"{flag} {root}: none of the {len(candidates)} image files is usable (e.g. {first})"
        )
    return ImageList(role, root, tuple(good), tuple(skipped))


def to_unit_tensor(rgb: np.ndarray) -> Tensor:
    """uint8 (H, W, 3) RGB → float (3, H, W) in [-1, 1]."""
    t = torch.from_numpy(np.array(rgb, dtype=np.uint8, copy=True)).permute(2, 0, 1).float()
    return t / 127.5 - 1.0


def augment(rgb: np.ndarray, load: int, crop: int, flip: bool, gen: torch.Generator) -> Tensor:
    """Resize to load×load (bicubic, aspect ignored), random crop×crop, random h-flip, [-1, 1]."""
    img = Image.fromarray(rgb).resize((load, load), Image.Resampling.BICUBIC)
    arr = np.asarray(img)
    top = int(torch.randint(0, load - crop + 1, (1,), generator=gen))
    left = int(torch.randint(0, load - crop + 1, (1,), generator=gen))
    arr = arr[top : top + crop, left : left + crop]
    if flip and bool(torch.rand((), generator=gen) < 0.5):
        arr = arr[:, ::-1]
    return to_unit_tensor(arr)


class UnalignedPairs(Dataset[dict[str, Tensor]]):
    """Global sample g → {'A': content (3, c, c), 'B': style (3, c, c), 'index': g}.

    An epoch is max(|A|, |B|) samples; contents follow a per-epoch permutation, the style
    of each sample is drawn at random (the reference ``unaligned`` dataset).
    """

    def __init__(
        self,
        content: ImageList,
        style: ImageList,
        cfg: DataConfig,
        seed: int,
        decay_from_sample: int | None = None,
    ) -> None:
        self.content = content.paths
        self.style = style.paths
        self.cfg = cfg
        self.seed = seed
        #: first global sample of the LR-decay phase, where the reference resizes straight to
        #: crop_size (None: never).
        self.decay_from_sample = decay_from_sample
        self._perm: tuple[int, Tensor] | None = None

    @property
    def epoch_length(self) -> int:
        return max(len(self.content), len(self.style))

    def __len__(self) -> int:  # samples are indexed without bound; this is one epoch
        return self.epoch_length

    def _content_index(self, epoch: int, pos: int) -> int:
        if self._perm is None or self._perm[0] != epoch:
            gen = torch.Generator().manual_seed(mix_seed(self.seed, "perm", epoch))
            self._perm = (epoch, torch.randperm(self.epoch_length, generator=gen))
        return int(self._perm[1][pos]) % len(self.content)

    def __getitem__(self, g: int) -> dict[str, Tensor]:
        epoch, pos = divmod(int(g), self.epoch_length)
        gen = torch.Generator().manual_seed(mix_seed(self.seed, "sample", g))
        b_index = int(torch.randint(0, len(self.style), (1,), generator=gen))
        cfg = self.cfg
        load = cfg.load_size
        if self.decay_from_sample is not None and g >= self.decay_from_sample:
            load = cfg.crop_size
        a_path = self.content[self._content_index(epoch, pos)]
        a = augment(read_image(a_path), load, cfg.crop_size, cfg.flip, gen)
        b = augment(read_image(self.style[b_index]), load, cfg.crop_size, cfg.flip, gen)
        return {"A": a, "B": b, "index": torch.tensor(g)}


class StepBatchSampler(Sampler[list[int]]):
    """Batches of global sample indices for one process, from ``start_step`` to ``end_step``.

    Step s of process r takes samples s·B·W + r·B … + B − 1 (B per-process batch, W processes).
    """

    def __init__(
        self, start_step: int, end_step: int, batch: int, rank: int = 0, world: int = 1
    ) -> None:
        self.start, self.end, self.batch, self.rank, self.world = (
            start_step,
            end_step,
            batch,
            rank,
            world,
        )

    def __iter__(self) -> Iterator[list[int]]:
        for s in range(self.start, self.end):
            base = s * self.batch * self.world + self.rank * self.batch
            yield list(range(base, base + self.batch))

    def __len__(self) -> int:
        return max(0, self.end - self.start)
