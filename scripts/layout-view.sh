# Sourced by typecheck.sh and lint-imports.sh: build/layout/ shows the installed layout as
# folders. The folders map to import names (trace/ is `medtrace`, ledger/ is
# `medtrace.ledger`, ...) through setuptools' package-dir, which neither mypy nor
# import-linter can follow, so both read this symlinked view of it instead.
view=build/layout
rm -rf "$view" && mkdir -p "$view/medtrace"
for entry in trace/*; do ln -s "$PWD/$entry" "$view/medtrace/"; done
for part in ledger scanners iot web protocol; do ln -s "$PWD/$part" "$view/medtrace/$part"; done
