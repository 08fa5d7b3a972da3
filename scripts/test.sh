#!/usr/bin/env bash
# The whole test suite: lint, strict types and the layer rules, then pytest (real PostgreSQL at 127.0.0.1:5432 when reachable).
# Extra arguments go to pytest, e.g. `scripts/test.sh -m "not slow"` for the fast tests.
# The browser tests drive Debian's chromium; the MQTT tests need a Mosquitto on 127.0.0.1:1883
# and its binary for private brokers. PostgreSQL is not installed: without it its tests are
# skipped, loudly (and fail under .ci/run).
export MEDTRACE_DEBIAN_PACKAGES="chromium mosquitto"
source "$(dirname "$0")/bootstrap.sh"
if ! (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null; then
  echo "starting Mosquitto on 127.0.0.1:1883 for the MQTT tests" >&2
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
fi
.venv/bin/ruff check .
.venv/bin/ruff format --check --quiet .
./scripts/typecheck.sh
./scripts/lint-imports.sh
exec .venv/bin/python -m pytest "$@"
