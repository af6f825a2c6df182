"""JSON log lines: one object per line, stamped with the current request id.

Configured in settings `LOGGING` when `LOG_FORMAT=json` (the default outside DEBUG).
Fields passed with `extra={...}` become top-level keys.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from hypervisor.requestid import current_request_id

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = current_request_id()
        if request_id:
            entry["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str)
