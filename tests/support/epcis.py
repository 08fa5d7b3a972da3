"""The official EPCIS 2.0 JSON schema, kept beside the EPCIS tests, for every test that checks
a document medtrace writes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "trace" / "epcis"
SCHEMA: dict[str, Any] = json.loads((EXAMPLES / "EPCIS-JSON-Schema.json").read_text())
