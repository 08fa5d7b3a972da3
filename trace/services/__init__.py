"""Use cases: one function each. A service owns its transaction, so an event row and its
ledger leaf commit together or not at all. The API and the portal call these alike."""
