#!/usr/bin/env python
"""Webcam 0 → stylized window: ``castrt live`` with ``--source 0 --sink window`` by default.

Every ``castrt live`` flag works here, e.g.::

    python run_webcam.py --checkpoint CAST_model --style styles/
    python run_webcam.py --untrained --style styles/ --source test   # no camera
"""

from __future__ import annotations

import sys

from realtime.cli import main


def webcam_argv(argv: list[str]) -> list[str]:
    """``castrt live`` arguments with webcam 0 and a window unless given."""
    out = ["live", *argv]
    if not any(a == "--source" or a.startswith("--source=") for a in argv):
        out += ["--source", "0"]
    if not any(a == "--sink" or a.startswith("--sink=") for a in argv):
        out += ["--sink", "window"]
    return out


if __name__ == "__main__":
    sys.exit(main(webcam_argv(sys.argv[1:])))
