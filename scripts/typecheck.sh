#!/usr/bin/env bash
# Strict mypy over the installed layout (scripts/layout-view.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/layout-view.sh
MYPYPATH=$view exec .venv/bin/mypy --strict --no-error-summary -p medtrace
