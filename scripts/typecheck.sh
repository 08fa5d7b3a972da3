#!/usr/bin/env bash
# Strict mypy over the installed layout. The folders map to import names (trace/ is
# `medtrace`, ledger/ is `medtrace.ledger`, ...) through setuptools' package-dir, which mypy
# cannot follow, so it checks a symlinked view of that layout under build/.
set -euo pipefail
cd "$(dirname "$0")/.."
view=build/typecheck
rm -rf "$view" && mkdir -p "$view/medtrace"
for entry in trace/*; do ln -s "$PWD/$entry" "$view/medtrace/"; done
for part in ledger scanners iot web protocol; do ln -s "$PWD/$part" "$view/medtrace/$part"; done
MYPYPATH=$view exec .venv/bin/mypy --strict --no-error-summary -p medtrace
