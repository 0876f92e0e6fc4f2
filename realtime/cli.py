"""The ``castrt`` command: one sub-command per job, each in ``realtime/commands/<name>.py``.

Every :class:`CastRTError` reaches the user as one line on stderr and a non-zero exit code;
Ctrl-C exits with 130. Tracebacks are shown only with ``CASTRT_DEBUG=1``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from models.errors import CastRTError

#: sub-command modules, each exposing ``add_parser(subparsers)`` (which sets ``func``).
COMMANDS: tuple[str, ...] = ("stylize", "live", "convert", "bench", "eval", "train")

EXIT_USAGE = 2
EXIT_FAILED = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="castrt",
        description="CAST-RT: real-time arbitrary style transfer (CAST, SIGGRAPH 2022) for images, video and live cameras.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"realtime.commands.{name}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``castrt`` console script; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = os.environ.get("CASTRT_DEBUG") == "1"
    try:
        code = args.func(args)
    except CastRTError as exc:
        if debug:
            raise
        print(f"castrt {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"castrt {args.command}: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
