#!/usr/bin/env bash
# The layer rules: import-linter's contracts ([tool.importlinter] in pyproject.toml) over the
# installed layout (scripts/layout-view.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/layout-view.sh
PYTHONPATH=$view exec .venv/bin/lint-imports --no-cache --no-logo
