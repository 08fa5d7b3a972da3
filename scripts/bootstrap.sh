# Sourced by demo.sh and test.sh: make .venv with medtrace and its test extras installed.
# On a fresh Debian/Ubuntu machine it installs, as root, the Debian packages medtrace needs,
# plus those the caller lists in MEDTRACE_DEBIAN_PACKAGES (the tests' browser and broker).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "medtrace needs Python 3.11 or newer (found: $("$PYTHON" --version 2>&1))." >&2
  echo "Set PYTHON=/path/to/python3.11 and run this again." >&2
  exit 1
fi

missing=()
"$PYTHON" -c 'import ensurepip, venv' 2>/dev/null || missing+=("python3-venv")
for package in libzbar0 ${MEDTRACE_DEBIAN_PACKAGES:-}; do  # libzbar0: pyzbar reads QR and 1D
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  if [ "$(id -u)" = 0 ]; then
    echo "installing system packages: ${missing[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "medtrace needs: ${missing[*]}. Run: sudo apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.medtrace-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing medtrace into .venv (first run takes a minute)..." >&2
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[dev]"
  echo "$want" > "$stamp"
fi
