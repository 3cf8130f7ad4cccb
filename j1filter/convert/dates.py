"""Date normalisation to Elastic's output form ``yyyy-MM-ddTHH:mm:ss.SSSZ`` (UTC, ms truncated).

Accepted, in this order:

1. Elastic's ISO8601 grammar (what its ``date`` processor accepts): ``yyyy[-MM[-dd[THH[:mm[:ss[.f]]]]]]``
   with an optional zone ``Z``, ``+HH:mm``, ``+HHmm``, ``+HH`` or a region id. No zone means UTC.
2. Epoch milliseconds: any JSON number, or a string of digits that is not a valid ISO year.
3. Other unambiguous ISO 8601 spellings Elastic refuses (space or lowercase ``t`` separator,
   lowercase ``z``, basic format such as ``20250708T070000Z``) and RFC 2822 dates.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import TypeGuard

from ..errors import TransformError
from .limits import MAX_DATE_TEXT, preview

_ISO = re.compile(
    r"(?P<y>\d{4})(?:-(?P<mo>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<h>\d{2})(?::(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?)?"
    r"(?P<z>Z|[+-]\d{2}(?::?\d{2})?|[A-Za-z][A-Za-z0-9_+\-]*(?:/[A-Za-z0-9_+\-]+)*)?)?)?)?",
    re.ASCII,  # only ASCII digits: "٢٠٢٥" is no year
)
# Real calendar days ("yyyy-MM-dd"), for the ISO forms that are read without datetime's parser.
_DAY = re.compile(r"(\d{4})-(\d\d)-(\d\d)", re.ASCII)
_DAYS_IN_MONTH = (0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_VALID_DAYS: dict[str, bool] = {}  # "yyyy-MM-dd" -> is a real calendar day (days repeat a lot)
_NUMERIC = re.compile(r"[+-]?\d+(?:\.\d*)?", re.ASCII)
#: Longest zone name looked up (the longest IANA name has 32 characters).
_MAX_ZONE_NAME = 64
_UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_MAX_OFFSET = timedelta(hours=18)  # as java.time.ZoneOffset
# datetime's own range, in epoch ms; outside it no ISO form exists.
_MIN_MS = int((datetime(1, 1, 1, tzinfo=_UTC) - _EPOCH) / timedelta(milliseconds=1))
_MAX_MS = int((datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=_UTC) - _EPOCH) / timedelta(milliseconds=1))


def _valid_day(text: str) -> bool:
    try:
        return _VALID_DAYS[text]
    except KeyError:
        pass
    m = _DAY.fullmatch(text)
    valid = False
    if m is not None:
        year, month, day = int(m[1]), int(m[2]), int(m[3])
        valid = (
            year >= 1
            and 1 <= month <= 12
            and 1 <= day <= _DAYS_IN_MONTH[month]
            and (day < 29 or month != 2 or (year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)))
        )
    if len(_VALID_DAYS) > 50_000:
        _VALID_DAYS.clear()
    _VALID_DAYS[text] = valid
    return valid


def format_utc(dt: datetime) -> str:
    """Format an aware datetime as Elastic does: UTC, exactly three fraction digits, ``Z``."""
    dt = dt.astimezone(_UTC)
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
        f"{dt.second:02d}.{dt.microsecond // 1000:03d}Z"
    )


def _zone(text: str | None) -> tzinfo | None:
    if text is None or text == "Z":
        return _UTC
    if text[0] in "+-":
        sign = -1 if text[0] == "-" else 1
        digits = text[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 18 or minutes > 59:
            return None
        return timezone(sign * timedelta(hours=hours, minutes=minutes))
    if len(text) > _MAX_ZONE_NAME:
        return None
    from dateutil import tz  # imported when first needed: most runs never name a zone

    try:
        return tz.gettz(text)  # region id such as Europe/Paris; None when unknown
    except (OSError, ValueError):  # a name the zone database cannot even look up
        return None


def _utc_iso_text(text: str) -> str | None:
    """The output form straight from the text, for an ISO value in UTC (zone ``Z`` or none)."""
    m = _ISO.fullmatch(text)
    if m is None or m["z"] not in (None, "Z"):
        return None
    day = f"{m['y']}-{m['mo'] or '01'}-{m['d'] or '01'}"
    hour, minute, second = int(m["h"] or 0), int(m["mi"] or 0), int(m["s"] or 0)
    if not _valid_day(day) or hour > 23 or minute > 59 or second > 59:
        return None
    return f"{day}T{hour:02d}:{minute:02d}:{second:02d}.{(m['f'] or '').ljust(3, '0')[:3]}Z"


def _parse_elastic_iso(text: str) -> datetime | None:
    m = _ISO.fullmatch(text)
    if m is None:
        return None
    zone = _zone(m["z"])
    if zone is None:
        return None
    frac = m["f"] or "0"
    try:
        return datetime(
            int(m["y"]),
            int(m["mo"] or 1),
            int(m["d"] or 1),
            int(m["h"] or 0),
            int(m["mi"] or 0),
            int(m["s"] or 0),
            int(frac[:6].ljust(6, "0")),
            tzinfo=zone,
        )
    except ValueError:  # impossible calendar values: strict, like Java's resolver
        return None


_DAY_PREFIX: dict[int, str] = {}  # days since the epoch -> "yyyy-MM-dd"
#: "HH:mm" of each minute of a day, and the digits of seconds and milliseconds: indexing
#: these costs less than formatting numbers (every epoch date of every entity comes here).
_HOUR_MINUTE = tuple(f"{minute // 60:02d}:{minute % 60:02d}" for minute in range(1440))
_TWO_DIGITS = tuple(f"{n:02d}" for n in range(60))
_THREE_DIGITS = tuple(f"{n:03d}" for n in range(1000))


def from_epoch_ms(ms: int | float) -> str:
    """Epoch milliseconds to the output form; raises TransformError out of range."""
    if ms != ms or not _MIN_MS <= ms <= _MAX_MS:  # NaN or outside datetime's range
        raise TransformError(f"epoch milliseconds [{ms}] out of range")
    days, ms_of_day = divmod(ms if ms.__class__ is int else int(ms // 1), 86_400_000)
    prefix = _DAY_PREFIX.get(days)
    if prefix is None:
        if len(_DAY_PREFIX) > 50_000:
            _DAY_PREFIX.clear()
        prefix = _DAY_PREFIX[days] = (_EPOCH + timedelta(days=days)).strftime("%Y-%m-%d")
        if len(prefix) != 10:  # years before 1000 print short on some platforms
            prefix = _DAY_PREFIX[days] = format_utc(_EPOCH + timedelta(days=days))[:10]
    seconds, millis = divmod(ms_of_day, 1000)
    minutes, second = divmod(seconds, 60)
    return f"{prefix}T{_HOUR_MINUTE[minutes]}:{_TWO_DIGITS[second]}.{_THREE_DIGITS[millis]}Z"


def _parse_lenient(text: str) -> datetime | None:
    if len(text) > 10 and text[10] in " t" and text[:4].isdigit():
        candidate = text[:10] + "T" + text[11:]
        if candidate.endswith("z"):
            candidate = candidate[:-1] + "Z"
        parsed = _parse_elastic_iso(candidate)
        if parsed is not None:
            return parsed
    # dateutil and email are imported when first needed: start-up pays for neither.
    from email.utils import parsedate_to_datetime

    from dateutil import parser

    if text[:1].isdigit():
        try:
            parsed = parser.isoparse(text)
        except (ValueError, OverflowError, OSError):
            parsed = None
        if parsed is not None:
            if parsed.tzinfo is None:
                return parsed.replace(tzinfo=_UTC)
            offset = parsed.utcoffset()
            return parsed if offset is not None and abs(offset) <= _MAX_OFFSET else None
    elif "," in text or " " in text:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=_UTC)
    return None


def is_normalized(value: object) -> TypeGuard[str]:
    """Whether ``value`` already is a real instant in the form ``yyyy-MM-ddTHH:mm:ss.SSSZ``:
    its separators in place (one slice: the characters 4, 7, ..., 19), then datetime's own
    parser for the digits, the ranges and the calendar (it runs for every date of every
    entity: two C calls cost less than a regular expression and a day check)."""
    if value.__class__ is str and len(value) == 24 and value[4:20:3] == "--T::." and value[23] == "Z":
        try:
            _FROM_ISO(value)
        except ValueError:
            return False
        return True
    return False


#: Reads every ISO 8601 form; with the separators of the output form checked, that form only.
_FROM_ISO = datetime.fromisoformat


def normalize_date(value: object) -> str:
    """Return ``value`` as ``yyyy-MM-ddTHH:mm:ss.SSSZ`` or raise TransformError."""
    # is_normalized(value), written out: this runs for every date of every entity
    if value.__class__ is str and len(value) == 24 and value[4:20:3] == "--T::." and value[23] == "Z":
        try:
            _FROM_ISO(value)
        except ValueError:
            pass
        else:
            return value
    if value.__class__ is int:  # epoch milliseconds, the other usual form (never a bool)
        return from_epoch_ms(value)
    if isinstance(value, bool):
        raise TransformError(f"unable to parse date [{str(value).lower()}]")
    if isinstance(value, (int, float)):
        return from_epoch_ms(value)
    if not isinstance(value, str):
        raise TransformError(f"unable to parse date [{value!r}]: not a string or number")
    text = value.strip()
    if len(text) > MAX_DATE_TEXT:
        raise TransformError(
            f"unable to parse date [{preview(value)}]: longer than {MAX_DATE_TEXT} characters"
        )
    if not text.isascii():  # dates are ASCII; other digits (e.g. "١٢") are no numbers
        raise TransformError(f"unable to parse date [{value}]: not ASCII text")
    quick = _utc_iso_text(text)
    if quick is not None:
        return quick
    parsed = _parse_elastic_iso(text)
    if parsed is None:
        if _NUMERIC.fullmatch(text):
            return from_epoch_ms(float(text) if "." in text else int(text))
        parsed = _parse_lenient(text)
        if parsed is None:
            raise TransformError(f"unable to parse date [{value}]")
    try:
        return format_utc(parsed)
    except (OverflowError, ValueError):
        raise TransformError(f"unable to parse date [{value}]: out of range") from None


def parse_normalized(text: str) -> datetime:
    """Parse a string this module produced (fast path for derived values such as durations)."""
    return datetime.fromisoformat(text[:-1] + "+00:00")
