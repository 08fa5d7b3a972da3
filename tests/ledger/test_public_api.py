"""Pins the public names of medtrace.ledger: adding or removing one is a deliberate change."""

from medtrace import ledger
from medtrace.ledger import sql

EXPECTED = [
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


def test_all_is_pinned_and_sorted() -> None:
    assert sorted(EXPECTED) == EXPECTED
    assert ledger.__all__ == EXPECTED


def test_every_public_name_exists() -> None:
    for name in ledger.__all__:
        assert getattr(ledger, name) is not None, name


def test_the_storage_interface_is_public() -> None:
    """The application and the sequencer use the same store: every name of ``sql.__all__``."""
    assert set(sql.__all__) <= set(ledger.__all__)
