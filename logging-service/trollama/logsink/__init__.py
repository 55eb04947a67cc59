"""The logging service: a TCP sink for JSON log lines (see docs/logging.md)."""
