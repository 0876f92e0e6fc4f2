#!/usr/bin/env bash
# One-command checks: ruff, mypy, then the test suite (fails if any fails or none ran).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m ruff check .
.venv/bin/python -m ruff format --check .
.venv/bin/python -m mypy
.venv/bin/python -m pytest -q "$@"
