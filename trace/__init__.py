"""medtrace: drug and medical-device supply-chain traceability.

Scan stations and sensors post signed custody events; each event becomes a leaf of an
RFC 9162 Merkle log (``medtrace.ledger``), and anyone can verify a unit's path from its
GS1 Digital Link URI. This package (the folder ``trace/``) is the core: identifiers, the
domain model, the custody rules, the store, the services, the HTTP API and the CLI.
"""

__version__ = "0.1.0"
