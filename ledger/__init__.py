"""medtrace's append-only Merkle log: hashing, proofs, signed checkpoints and their SQL store.

The ledger knows nothing about drugs or custody: a leaf is opaque bytes. It imports nothing
else of medtrace, and implements public standards so that anyone can check medtrace's log with
off-the-shelf tools:

* RFC 9162 §2.1 (the hashing of RFC 6962): leaf and node hashes, the Merkle
  Tree Hash, inclusion and consistency proofs and their verification
  algorithms (``hashing.py``, ``proofs.py``);
* c2sp.org/signed-note with Ed25519 keys (``note.py``);
* c2sp.org/tlog-checkpoint, the signed tree head (``checkpoint.py``);
* witnesses: c2sp.org/tlog-cosignature and c2sp.org/tlog-witness (``witness.py``);
* the offline audit that rebuilds the tree from every leaf (``audit.py``).

Its storage interface is the ``__all__`` of ``sql.py``, re-exported here: the tables (for the
application's migrations and its joins on leaves), appending leaves in the caller's
transaction, reading leaves, the stored tree as c2sp.org/tlog-tiles (``_tree.py``) with its
roots, proofs and entry bundles, and the signed checkpoints with their cosignatures. Every
function takes the caller's ``Connection`` and never commits. The ``Sequencer``
(``sequencer.py``) calls the same functions: it integrates committed leaves, signs checkpoints
and collects cosignatures, one leader at a time (``leader_lock``, ``lock.py``).

Two helpers are not about Merkle logs but stay here, because the ledger needs them and imports
nothing of the application, which uses them too: ``insert_rows`` (``COPY`` on PostgreSQL,
``bulk.py``), the bulk insert of the ledger's appends and of the application's stores; and
``leader_lock``, which also elects the application's scheduler.

Other parts of medtrace import only the names in ``__all__``.
"""

from ._tree import MAX_ENTRY_SIZE, TILE_WIDTH
from .audit import AuditSource, Finding, audit
from .bulk import insert_rows
from .checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from .errors import CheckpointError, EntryTooLarge, LedgerError, ProofError, RootMismatch
from .hashing import EMPTY_ROOT, leaf_hash, node_hash
from .lock import leader_lock
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
from .sql import (
    StoredCheckpoint,
    TreeMoved,
    append_leaves,
    begin_append,
    checkpoints,
    committed_size,
    consistency_proof_at,
    entry_bundle,
    inclusion_proof_at,
    inclusion_proofs_at,
    initial_rows,
    initial_tree_rows,
    integrate,
    integrated_size,
    latest_checkpoint,
    latest_checkpoint_time,
    leaf_data,
    leaves_at,
    leaves_table,
    ledger_metadata,
    read_stored_tiles,
    read_tile,
    recent_checkpoints,
    root_at,
    store_checkpoint,
    store_cosignature,
)
from .witness import (
    MAX_REQUEST_BYTES,
    SIZE_CONTENT_TYPE,
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
    "MAX_REQUEST_BYTES",
    "NoteSigner",
    "NoteVerifier",
    "ProofError",
    "RootMismatch",
    "SIZE_CONTENT_TYPE",
    "Sequencer",
    "StoredCheckpoint",
    "TILE_WIDTH",
    "TreeMoved",
    "Witness",
    "WitnessClient",
    "WitnessRefusal",
    "WitnessState",
    "append_leaves",
    "audit",
    "begin_append",
    "check_consistency",
    "check_inclusion",
    "checkpoints",
    "committed_size",
    "consistency_proof",
    "consistency_proof_at",
    "consistency_proof_from_hashes",
    "count_cosignatures",
    "entry_bundle",
    "inclusion_proof",
    "inclusion_proof_at",
    "inclusion_proof_from_hashes",
    "inclusion_proofs_at",
    "initial_rows",
    "initial_tree_rows",
    "insert_rows",
    "integrate",
    "integrated_size",
    "key_id",
    "latest_checkpoint",
    "latest_checkpoint_time",
    "leader_lock",
    "leaf_data",
    "leaf_hash",
    "leaves_at",
    "leaves_table",
    "ledger_metadata",
    "node_hash",
    "open_checkpoint",
    "read_stored_tiles",
    "read_tile",
    "recent_checkpoints",
    "root_at",
    "root_from_hashes",
    "root_from_inclusion_proof",
    "root_hash",
    "sign_checkpoint",
    "store_checkpoint",
    "store_cosignature",
    "verify_consistency",
    "verify_inclusion",
    "witness_clients",
]
