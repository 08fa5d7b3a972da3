"""Run the fault harness (tests/support/faults.py) several times and print the counts.

    .venv/bin/python tests/ops/faults.py --rounds 3

Each round starts a private PostgreSQL cluster and a private Mosquitto (never the machine's
shared ones), the deployment on them, and suffers every fault under load; the table shows per
fault what was acknowledged, found and duplicated. Exits 1 if anything was lost or doubled.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for `support`

from support.faults import main

if __name__ == "__main__":
    sys.exit(main())
