"""The verdict vocabulary: the words the server's verify answer uses and the signals a
station shows for them.

The server's verify answer says whether a unit can be trusted (``verdict``: genuine, expired,
recalled, quarantined, suspect, unknown; DESIGN.md "Verdicts and states"); a capture
refusal names its rule. Both become one :class:`Signal` for the person at the counter, with
what to do next, whether the person stands at a station or reads the portal.
"""

from __future__ import annotations

from enum import StrEnum


class Signal(StrEnum):
    """The word a station shows in colour after a scan."""

    OK = "OK"
    EXPIRED = "EXPIRED"
    RECALLED = "RECALLED"
    QUARANTINED = "QUARANTINED"
    SUSPECT = "SUSPECT"
    UNKNOWN = "UNKNOWN"
    NOT_FOR_THIS_PLACE = "NOT FOR THIS PLACE"
    REFUSED = "REFUSED"
    """The server refused the action for another rule (shown with that rule)."""
    UNCHECKED = "UNCHECKED"
    """Offline, and never seen at this station: nothing is known yet."""


#: The station's own verdict word for a unit it could not ask about and never saw.
UNCHECKED = "unchecked"


#: What to do next, for each signal but OK.
ADVICE = {
    Signal.EXPIRED: "Do not dispense or ship it; set it aside for destruction (mode destroy).",
    Signal.RECALLED: "Do not dispense or ship it; quarantine it and follow the recall notice.",
    Signal.QUARANTINED: "Held by quality assurance: do not move it until QA releases it.",
    Signal.SUSPECT: "Do not dispense it; keep the pack apart and report it to the regulator.",
    Signal.UNKNOWN: "This code was never commissioned: a possible counterfeit. Keep the pack "
    "apart and report it.",
    Signal.NOT_FOR_THIS_PLACE: "This pack is not yours to move here: check the delivery note "
    "and who holds it.",
    Signal.REFUSED: "The server refused this move: see the rule, fix the cause and scan again.",
    Signal.UNCHECKED: "Offline: this unit is checked when the scan is sent; do not dispense "
    "it until then.",
}

_BY_VERDICT = {
    "genuine": Signal.OK,
    "expired": Signal.EXPIRED,
    "recalled": Signal.RECALLED,
    "quarantined": Signal.QUARANTINED,
    "suspect": Signal.SUSPECT,
    "unknown": Signal.UNKNOWN,
    UNCHECKED: Signal.UNCHECKED,
}

#: Refusal rules of the capture API that a person reads as one of the signals.
_BY_RULE = {
    "custody.not_holder": Signal.NOT_FOR_THIS_PLACE,
    "custody.not_shipped_to_you": Signal.NOT_FOR_THIS_PLACE,
    "custody.wrong_location": Signal.NOT_FOR_THIS_PLACE,
    "custody.not_a_pharmacy": Signal.NOT_FOR_THIS_PLACE,
    "custody.unknown_unit": Signal.UNKNOWN,
    "custody.expired": Signal.EXPIRED,
    "custody.recalled": Signal.RECALLED,
    "custody.quarantined": Signal.QUARANTINED,
    "custody.suspect": Signal.SUSPECT,
}


def signal_of_verdict(verdict: str) -> Signal:
    """The signal of a server verdict (an unfamiliar one is treated as ``UNKNOWN``)."""
    return _BY_VERDICT.get(verdict, Signal.UNKNOWN)


def signal_of_rule(rule: str) -> Signal:
    """The signal of a capture refusal rule."""
    return _BY_RULE.get(rule, Signal.REFUSED)
