"""J1 timestamps: `_beginOn` and friends arrive as ISO-8601 strings or epoch-ms numbers.

Entity timestamps are data, not trusted: year 10000, negative values, 1e20 or a
5,000-digit string must come out as a number or None, never as an exception.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

from ..convert.dates import from_epoch_ms

# Epoch ms of 0001-01-01 and 9999-12-31T23:59:59.999Z: what a datetime can render.
MIN_RENDERABLE_MS = -62_135_596_800_000
MAX_RENDERABLE_MS = 253_402_300_799_999
_MAX_DIGITS = 20  # more digits than any epoch-ms value a datetime can hold


def timestamp_ms(value: object) -> int | None:
    """Epoch milliseconds of a J1 timestamp, or None when the value is not a timestamp.

    Accepts epoch-ms numbers (J1's storage form, seen in older output) and ISO-8601
    strings with or without an offset (current output); naive strings are taken as UTC.
    The shape of the value decides, never the property name. The result may lie outside
    the range a datetime can render (e.g. 1e20): callers compare it, never format it.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return _iso_to_ms(value.strip())
    return None


def iso_from_ms(epoch_ms: int) -> str:
    """`2024-05-02T05:52:51.488Z`: the ISO form J1 itself renders (clamped to years 1..9999)."""
    return from_epoch_ms(min(max(epoch_ms, MIN_RENDERABLE_MS), MAX_RENDERABLE_MS))


def compact_iso_from_ms(epoch_ms: int) -> str:
    """`20240502T055251Z`: the same instant, safe in a file name."""
    return iso_from_ms(epoch_ms)[:19].replace("-", "").replace(":", "") + "Z"


def _iso_to_ms(text: str) -> int | None:
    if len(text) > 64:  # no real timestamp is this long; keeps int() and the parser cheap
        return None
    if text.isdigit() or (text[:1] == "-" and text[1:].isdigit()):
        return int(text) if len(text) <= _MAX_DIGITS else None
    if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat rejects the Z suffix
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return round(moment.timestamp() * 1000)
    except (OverflowError, OSError, ValueError):
        return None
