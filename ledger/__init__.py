"""medtrace's append-only Merkle log: hashing, proofs and signed checkpoints.

The ledger knows nothing about drugs or custody: a leaf is opaque bytes. It
implements public standards so that anyone can check medtrace's log with
off-the-shelf tools:

* RFC 9162 §2.1 (the hashing of RFC 6962): leaf and node hashes, the Merkle
  Tree Hash, inclusion and consistency proofs and their verification
  algorithms (``hashing.py``, ``proofs.py``);
* c2sp.org/signed-note with Ed25519 keys (``note.py``);
* c2sp.org/tlog-checkpoint, the signed tree head (``checkpoint.py``);
* a SQL store of leaves, checkpoints and the tree as c2sp.org/tlog-tiles (``sql.py``,
  ``_tree.py``), and the ``Sequencer`` that integrates committed leaves, signs checkpoints and
  collects cosignatures, one leader at a time (``sequencer.py``, ``lock.py``);
* the bulk insert its writers share with the application's stores (``COPY`` on PostgreSQL,
  ``bulk.py``);
* witnesses: c2sp.org/tlog-cosignature and c2sp.org/tlog-witness (``witness.py``);
* the offline audit that rebuilds the tree from every leaf (``audit.py``).

Other parts of medtrace import only the names in ``__all__``.
"""

from ._tree import MAX_ENTRY_SIZE, TILE_WIDTH
from .audit import AuditSource, Finding, audit
from .bulk import insert_rows
from .checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from .errors import CheckpointError, EntryTooLarge, LedgerError, ProofError, RootMismatch
from .hashing import EMPTY_ROOT, leaf_hash, node_hash
from .note import NoteSigner, NoteVerifier, key_id
from .proofs import (
    check_consistency,
    check_inclusion,
    consistency_proof,
    consistency_proof_from_hashes,
    inclusion_proof,
    inclusion_proof_from_hashes,
    root_from_hashes,
    root_from_inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from .sequencer import Sequencer
from .witness import (
    CosignatureVerifier,
    Cosigner,
    Witness,
    WitnessClient,
    WitnessRefusal,
    WitnessState,
    count_cosignatures,
    witness_clients,
)

__all__ = [
    "AuditSource",
    "Checkpoint",
    "CheckpointError",
    "CosignatureVerifier",
    "Cosigner",
    "EMPTY_ROOT",
    "EntryTooLarge",
    "Finding",
    "LedgerError",
    "MAX_ENTRY_SIZE",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "RootMismatch",
    "Sequencer",
    "TILE_WIDTH",
    "Witness",
    "WitnessClient",
    "WitnessRefusal",
    "WitnessState",
    "audit",
    "check_consistency",
    "check_inclusion",
    "consistency_proof",
    "consistency_proof_from_hashes",
    "count_cosignatures",
    "inclusion_proof",
    "inclusion_proof_from_hashes",
    "insert_rows",
    "key_id",
    "leaf_hash",
    "node_hash",
    "open_checkpoint",
    "root_from_hashes",
    "root_from_inclusion_proof",
    "root_hash",
    "sign_checkpoint",
    "verify_consistency",
    "verify_inclusion",
    "witness_clients",
]
