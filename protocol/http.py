"""The base of medtrace's API clients (stations, sensor bridges): one participant's token."""

from __future__ import annotations

from typing import Self

import httpx


class TokenClient:
    """An HTTP connection pool to a medtrace service, authenticated as one participant
    (or anonymous, with no token, for the public reads)."""

    def __init__(self, base_url: str, token: str | None, *, timeout: float = 30.0) -> None:
        self._base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self._base_url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
