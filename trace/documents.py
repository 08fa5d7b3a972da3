"""Content-addressed document storage: a file is named by its SHA-256; and the check that
an uploaded document is what it claims to be, a PDF.

The store interface is small so an object store can serve production; the default keeps
files on disk under ``<root>/sha256/ab/cd/<hash>``, written to a temporary name, fsynced
and renamed, so a reader never sees half a file and a crash leaves none behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from typing import Protocol

from pypdf import PdfReader
from pypdf.errors import PyPdfError

from medtrace.errors import InvalidInput


def check_pdf(name: str, data: bytes) -> None:
    """Refuse (``document.not_pdf``) a file that a PDF reader cannot open, or that has no page.

    The first five bytes (``%PDF-``) prove nothing: anything can follow them, an HTML page
    included, and the document is served back to browsers. So the file is parsed in strict
    mode, cross-reference table, trailer and page tree, as a reader would. Parsing untrusted
    bytes can fail in ways a library does not all wrap in its own error type, so every
    exception of the parser is a refusal of the file, never a server error.
    """
    try:
        pages = len(PdfReader(io.BytesIO(data), strict=True).pages)
    except (PyPdfError, ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
        raise InvalidInput(
            f"{name} is not a PDF that can be read: {exc}", rule="document.not_pdf"
        ) from exc
    if pages == 0:
        raise InvalidInput(f"{name} is a PDF without a page", rule="document.not_pdf")


class DocumentStore(Protocol):
    """Where documents live, addressed by content."""

    def put(self, data: bytes) -> str:
        """Store bytes; return their SHA-256 (hex). Storing the same bytes twice is a no-op."""

    def get(self, sha256: str) -> bytes | None:
        """The bytes with this SHA-256, or None."""


class DiskDocumentStore:
    """Documents as files under a root folder."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, sha256: str) -> Path:
        return self._root / "sha256" / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest)
        if path.exists():
            return digest
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        return digest

    def get(self, sha256: str) -> bytes | None:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            return None
        path = self._path(sha256)
        return path.read_bytes() if path.exists() else None
