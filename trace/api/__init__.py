"""The HTTP API (FastAPI): assembly in ``main``, dependencies in ``deps``, error mapping in
``errors``, one router per resource in ``routes``."""
