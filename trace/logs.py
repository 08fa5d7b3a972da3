"""Logging of the server roles: plain text for a person, or JSON lines for a collector.

``MEDTRACE_LOG_FORMAT=json`` writes one JSON object per line on stderr with the time, level,
logger and message, plus every field the code passed in ``extra`` (the request log adds
``request_id``, ``method``, ``route``, ``status``, ``duration_ms`` and, on a refusal,
``rule``).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Literal

#: The attributes every ``LogRecord`` has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with its ``extra`` fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(log_format: Literal["json", "text"], *, level: int = logging.INFO) -> None:
    """Send every logger's records to stderr in ``log_format``, replacing earlier handlers."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
