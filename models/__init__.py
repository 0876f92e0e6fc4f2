"""CAST networks, pure tensor functions and checkpoints (no I/O beyond checkpoints)."""

from models.checkpoint import load_generator, save_generator
from models.errors import CastRTError, CheckpointError, InputError, StyleCodeError
from models.generator import CASTGenerator, untrained_generator
from models.style_code import StyleCode, interpolate_codes

__all__ = [
    "CASTGenerator",
    "CastRTError",
    "CheckpointError",
    "InputError",
    "StyleCode",
    "StyleCodeError",
    "interpolate_codes",
    "load_generator",
    "save_generator",
    "untrained_generator",
]
