"""camelCase -> snake_case exactly as Elastic's JupiterOne pipeline does it.

Rule (per UTF-16 code unit in Java; per BMP code point here): an uppercase character
is lowercased, and preceded by ``_`` when the previous *original* character is
lowercase. Everything else is copied. So ``deviceMACAddress`` -> ``device_macaddress``,
``tag.AccountName`` -> ``tag.account_name`` and ``ipv4Address`` -> ``ipv4address``.
"""

from __future__ import annotations

_CACHE: dict[str, str] = {}
_CACHE_LIMIT = 200_000  # keys repeat across entities; bound memory on hostile input
_CACHED_KEY_LENGTH = 256


def _lower_one(ch: str) -> str:
    # Java's Character.toLowerCase(char) is a 1:1 mapping; Python's may give two characters.
    if ch == "\u0130":
        return "i"
    low = ch.lower()
    return low if len(low) == 1 else ch


def _convert(key: str) -> str:
    out: list[str] = []
    prev_lower = False
    for ch in key:
        if ord(ch) > 0xFFFF:  # Java sees a surrogate pair: neither upper nor lower
            out.append(ch)
            prev_lower = False
        elif ch.isupper():
            if prev_lower:
                out.append("_")
            out.append(_lower_one(ch))
            prev_lower = False
        else:
            out.append(ch)
            prev_lower = ch.islower()
    return "".join(out)


def snake_case(key: str) -> str:
    """Return the snake_case form of one key (memoised)."""
    try:
        return _CACHE[key]
    except KeyError:
        pass
    result = key if key.islower() or not any(c.isupper() for c in key) else _convert(key)
    if len(key) <= _CACHED_KEY_LENGTH:  # a huge key is not kept alive by the cache
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = result
    return result
