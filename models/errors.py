"""Typed errors whose message a user can act on (the CLI prints them as one line)."""

from __future__ import annotations


class CastRTError(Exception):
    """Base class for every error that should reach the user as a one-line message."""


class CheckpointError(CastRTError):
    """A checkpoint file or directory is missing, malformed, unsafe or incompatible."""


class StyleCodeError(CastRTError):
    """A saved style code cannot be read or does not fit the generator."""


class InputError(CastRTError):
    """User input (an image, a video, a flag value) cannot be used."""
