#!/usr/bin/env bash
# Set up .venv if needed, lint, and run the test suite. Extra arguments go to pytest,
# e.g. `bash scripts/test.sh -m "not slow"` for the fast tests only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/lint-imports --no-logo  # the import contracts in pyproject.toml ([tool.importlinter])
.venv/bin/mypy  # the config (files, plugins, strictness) is [tool.mypy] in pyproject.toml
exec .venv/bin/python -m pytest "$@"
