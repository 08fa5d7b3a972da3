#!/usr/bin/env bash
# The demo: the whole chain on SQLite, ending with verify URLs; serves until Ctrl-C.
# Extra arguments go to `medtrace demo` (try --help).
source "$(dirname "$0")/bootstrap.sh"
exec .venv/bin/medtrace demo "$@"
