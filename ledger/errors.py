"""Errors raised by the ledger.

Every failure the ledger reports on purpose derives from one base, so a caller
can catch all of them at once or pick the depth it needs::

    LedgerError
    ├── ProofError           malformed proof input (sizes, hash lengths, proof length)
    │   └── RootMismatch     a well-formed proof leads to another root
    ├── CheckpointError      bad checkpoint or note text, bad signature, unknown key
    └── EntryTooLarge        a stored leaf does not fit a tlog-tiles entry bundle

Misuse of an API (asking for a proof of a leaf the caller does not have,
signing a text that is not a note text) raises ``ValueError`` instead: it is a
bug in the caller, not a failed verification.
"""

__all__ = ["CheckpointError", "EntryTooLarge", "LedgerError", "ProofError", "RootMismatch"]


class LedgerError(Exception):
    """Base of every error the ledger raises when verification or parsing fails."""


class ProofError(LedgerError):
    """Raised when proof input is malformed.

    Examples: a leaf index outside the tree, a tree size that is negative or
    smaller than an earlier one, a hash that is not 32 bytes, or a proof with
    too few or too many hashes for the sizes it claims (RFC 9162 §2.1.3.2,
    §2.1.4.2).
    """


class RootMismatch(ProofError):
    """Raised when a well-formed proof leads to a root other than the one expected.

    ``expected`` is the root the caller trusts (for example from a signed
    checkpoint); ``calculated`` is the root the proof leads to.
    """

    expected: bytes
    calculated: bytes

    def __init__(self, expected: bytes, calculated: bytes) -> None:
        self.expected = expected
        self.calculated = calculated
        super().__init__(f"root mismatch: expected {expected.hex()}, calculated {calculated.hex()}")


class CheckpointError(LedgerError):
    """Raised when a checkpoint or a signed note cannot be trusted.

    Raised for malformed checkpoint text (c2sp.org/tlog-checkpoint), malformed
    note or signature lines (c2sp.org/signed-note), a malformed verifier key,
    a note that carries no signature by the expected key, and a signature by
    that key that does not verify.
    """


class EntryTooLarge(LedgerError):
    """Raised when a stored leaf is longer than a c2sp.org/tlog-tiles entry holds
    (``MAX_ENTRY_SIZE``): its entry bundle cannot be written. ``index`` is that leaf's and
    ``size`` its length; the leaf itself stays readable and provable by its hash."""

    index: int
    size: int

    def __init__(self, index: int, size: int) -> None:
        self.index = index
        self.size = size
        super().__init__(
            f"leaf {index} has {size} bytes, more than a tlog-tiles entry holds (65535)"
        )
