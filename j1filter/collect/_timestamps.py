"""J1 timestamps: `_beginOn` and friends arrive as ISO-8601 strings or epoch-ms numbers."""

from __future__ import annotations

import math
from datetime import datetime, timezone


def timestamp_ms(value: object) -> int | None:
    """Epoch milliseconds of a J1 timestamp, or None when the value is not a timestamp.

    Accepts epoch-ms numbers (J1's storage form, seen in older output) and ISO-8601
    strings with or without an offset (current output); naive strings are taken as UTC.
    The shape of the value decides, never the property name.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str):
        return _iso_to_ms(value.strip())
    return None


def iso_from_ms(epoch_ms: int) -> str:
    """`2024-05-02T05:52:51.488Z`: the ISO form J1 itself renders."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{epoch_ms % 1000:03d}Z"


def _iso_to_ms(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if text.endswith(("Z", "z")):  # Python 3.10's fromisoformat rejects the Z suffix
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return round(moment.timestamp() * 1000)
