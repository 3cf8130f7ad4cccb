"""Bounds on the text a conversion reads, so no value costs more than linear time.

Every string-to-number and string-to-date path checks its input length against these
before parsing: far beyond any real value, well below ``int()``'s 4,300-digit limit.
"""

from __future__ import annotations

from ..errors import TransformError

#: Longest text read as a number.
MAX_NUMBER_TEXT = 1000
#: Longest text read as a date (the longest real form, with nanoseconds and a region id, has
#: about 60 characters).
MAX_DATE_TEXT = 100
#: Most digits read as a URL port (Java's URI refuses a port beyond a 32-bit int).
MAX_PORT_DIGITS = 10


def preview(text: str, limit: int = 100) -> str:
    """``text`` as error messages quote it: long text cut, with its length said."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


def bounded(text: str, limit: int, what: str) -> str:
    """``text`` if it has at most ``limit`` characters, else a TransformError saying so."""
    if len(text) > limit:
        raise TransformError(
            f"unable to convert [{preview(text)}] to {what}: longer than {limit:,} characters"
        )
    return text
