"""Pins the public names of medtrace.ledger: adding or removing one is a deliberate change."""

from medtrace import ledger

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


def test_all_is_pinned_and_sorted() -> None:
    assert sorted(EXPECTED) == EXPECTED
    assert ledger.__all__ == EXPECTED


def test_every_public_name_exists() -> None:
    for name in ledger.__all__:
        assert getattr(ledger, name) is not None, name
