#!/usr/bin/env bash
# The whole test suite: lint and strict types, then pytest (real PostgreSQL at 127.0.0.1:5432 when reachable).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"` for the fast tests.
source "$(dirname "$0")/bootstrap.sh"
.venv/bin/ruff check .
.venv/bin/ruff format --check --quiet .
./scripts/typecheck.sh
exec .venv/bin/python -m pytest "$@"
