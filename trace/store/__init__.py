"""Data access: keyword-only query functions over a session. They may flush, never commit:
the service that calls them owns the transaction."""
