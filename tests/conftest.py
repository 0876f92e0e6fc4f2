"""Shared fixtures: paths into ../shared (skipped with a reason when absent), small models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from models.generator import CASTGenerator, untrained_generator

if not torch.cuda.is_available():
    # Triton kernels (realtime.triton_conv) run in Triton's CPU interpreter; Triton reads this
    # when it is first imported, which may happen in any test module, so it is set here
    os.environ.setdefault("TRITON_INTERPRET", "1")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path under ../shared, or skip the test with a clear reason if it is missing."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"needs {p} (the shared test data beside the checkout) which is absent")
    return p


@pytest.fixture(scope="session")
def upstream_dir() -> Path:
    """Official-layout checkpoint directory written by the reference code."""
    return shared_path("fixtures", "cast_upstream", "CAST_model")


@pytest.fixture(scope="session")
def upstream_io() -> dict[str, torch.Tensor]:
    """Inputs and outputs of the reference test path (io.pt)."""
    return torch.load(shared_path("fixtures", "cast_upstream", "io.pt"), weights_only=True)


@pytest.fixture(scope="session")
def tiny_gen() -> CASTGenerator:
    """Seeded random generator (no Dec_A), shared read-only across tests."""
    return untrained_generator(seed=0, with_photo_decoder=False)
