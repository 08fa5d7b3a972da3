"""How many examples a property test draws: few enough for CI, many in a thorough run.

CI runs every property on two shared cores at each push; the big runs that once sat in the
decorators (2 000 canonical-JSON values, 25 printed and photographed labels per symbology)
cost minutes there. ``MEDTRACE_THOROUGH=1`` brings them back: run it after changing the code a
property covers, and before a release.
"""

from __future__ import annotations

import os

THOROUGH = os.environ.get("MEDTRACE_THOROUGH") == "1"


def examples(ci: int, thorough: int) -> int:
    """``ci`` examples, or ``thorough`` ones with ``MEDTRACE_THOROUGH=1``."""
    return thorough if THOROUGH else ci
