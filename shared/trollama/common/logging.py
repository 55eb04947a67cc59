"""Structured JSON logging for every service.

One JSON object per line with the time, level, service, logger, message and
the id of the request being handled (carried in a context variable, so every
line written while serving a request carries it). Secret values registered
with :func:`register_secret` are masked wherever they appear in a record.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from trollama.common.log_shipping import ShippingHandler

#: The request being served by the current task (None outside a request).
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

#: Shortest value worth masking, in characters (shorter ones mask too much).
MIN_MASKED_CHARS = 6
#: Most distinct secrets the redactor tracks.
MAX_SECRETS = 32
MASK = "***"

_STANDARD_ATTRS = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


class _Redactor:
    def __init__(self) -> None:
        self._secrets: list[str] = []

    def add(self, value: str) -> None:
        if len(value) >= MIN_MASKED_CHARS and value not in self._secrets:
            self._secrets = [*self._secrets, value][-MAX_SECRETS:]

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


_redact = _Redactor()


def register_secret(value: str | None) -> None:
    """Mask this value in every log line from now on."""
    if value:
        _redact.add(value)


def redact(text: str) -> str:
    """The text with every registered secret masked."""
    return _redact(text)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRS and key not in entry and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """Human-readable lines for a terminal, with the same masking."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)-7s {service} %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = request_id_var.get()
        return redact(f"{line} [{request_id}]" if request_id else line)


class ShippingConfig(Protocol):
    """Where to ship log lines (every service's settings object has these fields)."""

    log_shipping: bool
    log_service_host: str
    log_service_port: int
    log_spool_dir: Path


def configure_logging(
    service: str,
    *,
    level: str = "INFO",
    json_lines: bool = True,
    shipping: ShippingHandler | ShippingConfig | None = None,
) -> ShippingHandler | None:
    """Send every logger's records to stderr, formatted for this service.

    With ``shipping`` (a service's settings with ``log_shipping`` on, or a
    ready handler) every record is also shipped to the logging service; the
    shipping handler is returned so its counters can be read.
    """
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if json_lines else TextFormatter(service))
    shipper = _shipper(service, shipping)
    root = logging.getLogger()
    for old in root.handlers:
        if old is not shipper and _is_shipper(old):
            old.close()
    root.handlers[:] = [handler] if shipper is None else [handler, shipper]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "botocore", "urllib3", "strands"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return shipper


def _is_shipper(handler: logging.Handler) -> bool:
    from trollama.common.log_shipping import ShippingHandler  # it imports this module

    return isinstance(handler, ShippingHandler)


def _shipper(
    service: str, shipping: ShippingHandler | ShippingConfig | None
) -> ShippingHandler | None:
    from trollama.common.log_shipping import ShippingHandler  # it imports this module

    if shipping is None or isinstance(shipping, ShippingHandler):
        return shipping
    if not shipping.log_shipping:
        return None
    return ShippingHandler(
        service,
        host=shipping.log_service_host,
        port=shipping.log_service_port,
        spool_dir=shipping.log_spool_dir,
    )
