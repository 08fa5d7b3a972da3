"""Checkpoints of c2sp.org/tlog-checkpoint: a log's signed tree head.

A checkpoint is the text of a signed note (c2sp.org/signed-note)::

    <origin>
    <tree size, ASCII decimal, no leading zeros>
    <base64 of the RFC 9162 root hash>
    [extension lines, non-empty]

``Checkpoint`` checks these rules when it is built, and ``Checkpoint.from_text``
parses them, so code holding a ``Checkpoint`` holds a valid one. medtrace names
the log's signing key after the origin (the spec's SHOULD), and
``open_checkpoint`` insists on it.
"""

import base64
import binascii
import re
from dataclasses import dataclass

from .errors import CheckpointError
from .hashing import HASH_SIZE
from .note import NoteSigner, NoteVerifier

__all__ = ["Checkpoint", "open_checkpoint", "sign_checkpoint"]

_MAX_TREE_SIZE = 2**64
_SIZE_LINE = re.compile(r"0|[1-9][0-9]*")
_SIZE_DIGITS = len(str(_MAX_TREE_SIZE - 1))
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f]")


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: its origin, its size and its root hash.

    Raises ``CheckpointError`` on construction if a field breaks
    c2sp.org/tlog-checkpoint: an empty origin, a size outside [0, 2**64), a
    root hash that is not 32 bytes, or a line containing a newline or another
    control character (extension lines must also be non-empty).
    """

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin:
            raise CheckpointError("checkpoint origin is empty")
        if _CONTROL_CHARACTER.search(self.origin):
            raise CheckpointError(
                "checkpoint origin contains a newline or another control character"
            )
        if not 0 <= self.size < _MAX_TREE_SIZE:
            raise CheckpointError("checkpoint size must be in [0, 2**64)")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(
                f"checkpoint root hash must be {HASH_SIZE} bytes, got {len(self.root_hash)}"
            )
        # A list would make the frozen checkpoint unhashable and mutable.
        object.__setattr__(self, "extensions", tuple(self.extensions))
        for number, line in enumerate(self.extensions, 1):
            if not line:
                raise CheckpointError(f"checkpoint extension line {number} is empty")
            if _CONTROL_CHARACTER.search(line):
                raise CheckpointError(
                    f"checkpoint extension line {number} contains a newline or another "
                    "control character"
                )

    def to_text(self) -> str:
        """Return the checkpoint as note text, every line ending with a newline."""
        root = base64.b64encode(self.root_hash).decode()
        extensions = "".join(f"{line}\n" for line in self.extensions)
        return f"{self.origin}\n{self.size}\n{root}\n{extensions}"

    @classmethod
    def from_text(cls, text: str) -> "Checkpoint":
        """Parse checkpoint note text (the body of the note, not the signatures).

        Raises:
            CheckpointError: with one message per malformed field: text not
                ending in a newline, fewer than three lines, an empty origin, a
                size that is not ASCII decimal without leading zeros, a root
                hash that is not the canonical base64 of 32 bytes, an empty
                extension line.
        """
        if not text.endswith("\n"):
            raise CheckpointError("checkpoint text must end with a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise CheckpointError(
                f"checkpoint needs at least 3 lines (origin, size, root hash), got {len(lines)}"
            )
        origin, size_line, root_line, *extensions = lines
        return cls(origin, parse_tree_size(size_line), _decode_root(root_line), tuple(extensions))


def parse_tree_size(text: str) -> int:
    """A tree size as C2SP notes write it: decimal without leading zeros, below 2**64.

    The length is checked before the conversion, so a size of thousands of digits costs
    nothing and never meets Python's limit on converting long decimal strings.

    Raises:
        CheckpointError: for any other text.
    """
    if not _SIZE_LINE.fullmatch(text):
        raise CheckpointError(f"size {text[:40]!r} is not a decimal number without leading zeros")
    if len(text) > _SIZE_DIGITS or int(text) >= _MAX_TREE_SIZE:
        raise CheckpointError("size must be in [0, 2**64)")
    return int(text)


def sign_checkpoint(checkpoint: Checkpoint, signer: NoteSigner) -> str:
    """Return ``checkpoint`` as a note signed by ``signer``.

    Raises:
        ValueError: if the signer's key name is not the checkpoint's origin,
            since ``open_checkpoint`` would refuse the note.
    """
    if signer.name != checkpoint.origin:
        raise ValueError(
            f"key name {signer.name!r} differs from checkpoint origin {checkpoint.origin!r}"
        )
    return signer.sign(checkpoint.to_text())


def open_checkpoint(note: str, verifier: NoteVerifier) -> Checkpoint:
    """Verify a signed checkpoint note and return its checkpoint.

    Signature lines by other keys (witnesses) are ignored.

    Raises:
        CheckpointError: if the note has no valid signature by ``verifier``
            (see ``NoteVerifier.verify``), if its text is not a valid checkpoint,
            or if its origin is not the verifier's key name.
    """
    checkpoint = Checkpoint.from_text(verifier.verify(note))
    if checkpoint.origin != verifier.name:
        raise CheckpointError(
            f"checkpoint origin {checkpoint.origin!r} is not the key name {verifier.name!r}"
        )
    return checkpoint


def _decode_root(line: str) -> bytes:
    """Decode the root hash line.

    Only the canonical encoding is accepted, so that a checkpoint and its text
    correspond one to one.
    """
    try:
        root = base64.b64decode(line, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise CheckpointError(f"checkpoint root hash {line!r} is not valid base64") from exc
    if base64.b64encode(root).decode() != line:
        raise CheckpointError(f"checkpoint root hash {line!r} is not canonical base64")
    return root
