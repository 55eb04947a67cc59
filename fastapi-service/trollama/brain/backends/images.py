"""Light helpers the backends share on every path (no strands import here).

The strands-based tool path (:mod:`.agent`) is imported only when a request
first needs tools: importing strands costs over a second of start-up.
"""

from __future__ import annotations

import base64
import binascii
import sys

#: Prefix of an earlier tool result replayed as text (it has no call id to match).
TOOL_RESULT_PREFIX = "Tool result: "

#: Base64 characters decoded to recognise an image format (12 bytes).
_SNIFF_BASE64_CHARS = 16
_IMAGE_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG", "png"),
    (b"\xff\xd8", "jpeg"),
    (b"GIF8", "gif"),
    (b"RIFF", "webp"),
)
_STRANDS_EXCEPTIONS = "strands.types.exceptions"


def image_format(data: bytes) -> str:
    """``png``, ``jpeg``, ``gif`` or ``webp`` from an image's first bytes (default png)."""
    return next((name for magic, name in _IMAGE_SIGNATURES if data.startswith(magic)), "png")


def image_mime(encoded: str) -> str:
    """The MIME type of a base64-encoded image, e.g. ``image/jpeg``."""
    try:
        head = base64.b64decode(encoded[:_SNIFF_BASE64_CHARS])
    except (binascii.Error, ValueError):
        head = b""
    return f"image/{image_format(head)}"


def is_agent_overflow(exc: BaseException) -> bool:
    """True for strands' context-window overflow (never true before strands is loaded)."""
    module = sys.modules.get(_STRANDS_EXCEPTIONS)
    overflow = getattr(module, "ContextWindowOverflowException", None)
    return overflow is not None and isinstance(exc, overflow)
