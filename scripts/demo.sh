#!/usr/bin/env bash
# Set up .venv if needed and run the full local lifecycle on synthetic data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/kubricks demo "$@"
