"""The registry of named transforms that mapping files refer to.

A transform is registered as a *factory*: it takes the parameters written next to its name
in YAML (keyword-only, validated when the mapping is compiled) and returns the function
applied to values. That function returns the new value, returns ``None`` when there is
nothing to write (no error), or raises :class:`TransformError` with a message that says
what was wrong (the engine adds where).

``per_item`` transforms are applied to each element when the value is a list, the way
Elasticsearch's ``convert`` processor treats lists.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from math import isfinite
from typing import Any

import orjson

from ..errors import ParameterError, TransformError
from . import commandline, dates, urls
from .limits import MAX_NUMBER_TEXT, bounded
from .types import ValueType, constant_type

ValueFn = Callable[[Any], Any]


#: What a transform returns: a type, or a function of its parameters giving one.
ResultType = ValueType | Callable[[dict[str, Any]], ValueType]


@dataclass(frozen=True)
class Transform:
    """A named transform with its contract: the factory, whether it maps list items one by
    one, the type of its result (what `j1filter check` compares with the target field)."""

    name: str
    factory: Callable[..., ValueFn]  # keyword parameters from YAML -> the value function
    per_item: bool
    result: ResultType
    doc: str
    #: True when every object (dict) value makes the transform raise: a conversion to a
    #: scalar type. An ``on_error: keep`` coercion then leaves an object as it is without
    #: calling it (no exception raised and caught per entity; see codegen).
    refuses_objects: bool = False

    def result_type(self, params: dict[str, Any]) -> ValueType:
        return self.result(params) if callable(self.result) else self.result


#: The built-in transforms, each registered by the decorator on its factory.
TRANSFORMS: dict[str, Transform] = {}


def transform(
    name: str, *, result: ResultType, per_item: bool = False, refuses_objects: bool = False
) -> Callable[[Callable[..., ValueFn]], Callable[..., ValueFn]]:
    """Register a built-in transform factory under ``name`` with the type of its result; its
    docstring is the reference text."""

    def register(factory: Callable[..., ValueFn]) -> Callable[..., ValueFn]:
        doc = (factory.__doc__ or "").strip()
        TRANSFORMS[name] = Transform(name, factory, per_item, result, doc, refuses_objects)
        return factory

    return register


def java_string(value: Any) -> str:
    """Render a scalar as Java's ``toString`` would (Elastic's string rendering). Transforms
    that run for most entities test for text first themselves: no call for the usual value."""
    if value.__class__ is str:  # the usual case, first
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return _java_double(value)
    return value if isinstance(value, str) else str(value)


def _java_double(x: float) -> str:
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0 or 1e-3 <= abs(x) < 1e7:
        text = repr(x)  # plain decimal notation in this range
        return text if "." in text else text + ".0"
    # Java's "computerized scientific notation" with the shortest round-trip digits.
    from decimal import Decimal  # imported when first needed: start-up does not pay for it

    sign, digits, exponent = Decimal(repr(x)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) - 1 + int(exponent)
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{power}"


# --- type conversions (the field types of Elastic's pipeline) -------------------------------

_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1
# Only ASCII digits are numbers (re.ASCII: "\d" would also match "١" or "１"). Each pattern
# is unambiguous, so a failed match costs time linear in the text.
_DEC_INT = re.compile(r"[+-]?\d+", re.ASCII)
_HEX_INT = re.compile(r"([+-]?)0[xX]([0-9a-fA-F]+)")
_INTEGRAL_DECIMAL = re.compile(r"[+-]?\d+\.0*", re.ASCII)
_JAVA_DOUBLE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?[dDfF]?", re.ASCII)


@transform("date", per_item=True, result=ValueType.DATE, refuses_objects=True)
def date_transform() -> ValueFn:
    """ISO 8601 (any offset), epoch milliseconds (number or numeric string) or RFC 2822 date
    -> ``yyyy-MM-ddTHH:mm:ss.SSSZ`` in UTC, milliseconds truncated."""
    return dates.normalize_date


@transform("long", per_item=True, result=ValueType.LONG, refuses_objects=True)
def long_transform() -> ValueFn:
    """Whole number: integers, integral floats (``7.0``), decimal or ``0x`` hex integer strings."""

    def to_long(value: Any) -> int:
        result: int | None = None
        if isinstance(value, bool):
            pass
        elif isinstance(value, int):
            result = value
        elif isinstance(value, float):
            if value == value and value.is_integer():
                result = int(value)
        elif isinstance(value, str):
            bounded(value, MAX_NUMBER_TEXT, "long")
            if _DEC_INT.fullmatch(value) or _INTEGRAL_DECIMAL.fullmatch(value):
                result = int(value.split(".")[0])
            elif m := _HEX_INT.fullmatch(value):
                result = int(m[2], 16) * (-1 if m[1] == "-" else 1)
        if result is None or not _LONG_MIN <= result <= _LONG_MAX:
            raise TransformError(f"unable to convert [{java_string(value)}] to long")
        return result

    return to_long


@transform("double", per_item=True, result=ValueType.DOUBLE, refuses_objects=True)
def double_transform() -> ValueFn:
    """Finite number: numbers or numeric strings (surrounding blanks allowed). NaN and
    infinities are refused, since JSON cannot carry them."""

    def to_double(value: Any) -> float:
        if value.__class__ is float and isfinite(value):
            return value
        result: float | None = None
        if isinstance(value, bool):
            pass
        elif isinstance(value, (int, float)):
            result = float(value)
        elif isinstance(value, str):
            text = bounded(value, MAX_NUMBER_TEXT, "double").strip()
            if _JAVA_DOUBLE.fullmatch(text):
                result = float(text.rstrip("dDfF"))
        if result is None or not isfinite(result):
            raise TransformError(f"unable to convert [{java_string(value)}] to double")
        return result

    return to_double


@transform("boolean", per_item=True, result=ValueType.BOOLEAN, refuses_objects=True)
def boolean_transform() -> ValueFn:
    """``true``/``false`` in any case (booleans or strings), and the integers 1 and 0."""

    def to_boolean(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            low = value.lower()
            if low == "true":
                return True
            if low == "false":
                return False
        elif isinstance(value, int) and value in (0, 1):
            return value == 1
        raise TransformError(f"[{java_string(value)}] is not a boolean value, cannot convert to boolean")

    return to_boolean


_IP_CACHE: dict[str, str | None] = {}  # value -> canonical form, or None when invalid
_UNKNOWN = object()
#: The longest text ipaddress reads as an address (zone id dropped): IPv6 with every group
#: written out and an IPv4 tail, "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255".
_MAX_IP_TEXT = 45


def ip_or_none(value: Any) -> str | None:
    """IPv4 unchanged, IPv6 in RFC 5952 form (zone id dropped); None for anything else."""
    if value.__class__ is not str and not isinstance(value, str):
        return None
    result = _IP_CACHE.get(value, _UNKNOWN)
    if result is _UNKNOWN:
        result = _parse_ip(value)
        if len(value) <= 64:  # an IPv6 literal with a zone id fits; longer text is not kept
            if len(_IP_CACHE) > 100_000:
                _IP_CACHE.clear()
            _IP_CACHE[value] = result
    return result  # type: ignore[return-value]


def canonical_ip(value: Any) -> str:
    """:func:`ip_or_none`, raising TransformError for what is not an IP literal."""
    result = ip_or_none(value)
    if result is None:
        if not isinstance(value, str):
            raise TransformError(f"[{java_string(value)}] is not an IP string literal")
        raise TransformError(f"'{value}' is not an IP string literal.")
    return result


def _parse_ip(text: str) -> str | None:
    text = text.strip().split("%", 1)[0]
    if len(text) > _MAX_IP_TEXT:  # no address: said without the cost of ipaddress's exception
        return None
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped is not None:
        return f"::ffff:{address.ipv4_mapped}"
    return str(address)


@transform("ip", per_item=True, result=ValueType.IP, refuses_objects=True)
def ip_transform() -> ValueFn:
    """Valid IPv4 or IPv6 literal, canonicalised (IPv6 compressed, lowercase)."""
    return canonical_ip


@transform("string", per_item=True, result=ValueType.KEYWORD)
def string_transform() -> ValueFn:
    """Any scalar as text, rendered as Elastic renders it (``1`` -> ``"1"``, ``true`` -> ``"true"``)."""
    return java_string


@transform("only_ips", per_item=True, result=ValueType.IP)
def only_ips_transform() -> ValueFn:
    """Keep valid IP addresses (canonicalised) and silently drop anything else, for lists
    that mix IPs with host names or ids (e.g. scanner ``targets``)."""
    return ip_or_none


# --- text ------------------------------------------------------------------------------------


@transform("lowercase", per_item=True, result=ValueType.KEYWORD)
def lowercase_transform() -> ValueFn:
    """Lowercase text; other scalars are first rendered as text."""
    return lambda value: (value if value.__class__ is str else java_string(value)).lower()


@transform("uppercase", per_item=True, result=ValueType.KEYWORD)
def uppercase_transform() -> ValueFn:
    """Uppercase text; other scalars are first rendered as text."""
    return lambda value: (value if value.__class__ is str else java_string(value)).upper()


@transform("trim", per_item=True, result=ValueType.KEYWORD)
def trim_transform() -> ValueFn:
    """Strip surrounding white space from text; ``None`` when nothing is left."""
    return lambda value: java_string(value).strip() or None


_MAC_SEPARATORS = re.compile(r"[:\-.\s]")
_HEX = re.compile(r"[0-9A-Fa-f]+")


@transform("mac", per_item=True, result=ValueType.KEYWORD)
def mac_transform() -> ValueFn:
    """MAC address in the ECS form ``AA-BB-CC-DD-EE-FF`` (EUI-48 or EUI-64, any common
    separator). Text that is not a MAC address is kept as it is."""

    def to_mac(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        digits = _MAC_SEPARATORS.sub("", value)
        if len(digits) not in (12, 16) or not _HEX.fullmatch(digits):
            return value
        digits = digits.upper()
        return "-".join([digits[i : i + 2] for i in range(0, len(digits), 2)])

    return to_mac


@transform("basename", per_item=True, result=ValueType.KEYWORD)
def basename_transform() -> ValueFn:
    """Last segment of a Windows or POSIX path (``C:\\\\x\\\\a.exe`` -> ``a.exe``)."""
    return lambda value: re.split(r"[\\/]", java_string(value))[-1] or None


def _compiled(pattern: str) -> re.Pattern[str]:
    """A ``pattern`` parameter compiled; a bad one is a ParameterError (found by check)."""
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ParameterError(f"invalid pattern: {exc}") from None


@transform("extract", result=ValueType.KEYWORD)
def extract_transform(*, pattern: str, group: int = 1) -> ValueFn:
    """First match of a regular expression (``pattern``, capture ``group``); ``None`` if no
    match, and for an object, which holds no text of its own to search."""
    regex = _compiled(pattern)
    if not 0 <= group <= regex.groups:
        raise ParameterError(f"group {group} does not exist in pattern")

    def extract(value: Any) -> Any:
        if value.__class__ is str:
            m = regex.search(value)
        elif isinstance(value, dict):  # e.g. Tenable's port object under a rule for port numbers
            return None
        else:
            m = regex.search(java_string(value))
        return m[group] if m else None

    return extract


def _lookup_result(params: dict[str, Any]) -> ValueType:
    """The one type of the table's values and the default (``any`` when they differ)."""
    table = params.get("table")
    values = list(table.values()) if isinstance(table, dict) else []
    return constant_type(values + [params.get("default")])


@transform("lookup", result=_lookup_result)
def lookup_transform(*, table: dict[Any, Any], default: Any = None, ignore_case: bool = True) -> ValueFn:
    """Translate a value through ``table`` (keys compared as text, case-insensitive unless
    ``ignore_case: false``); ``default`` (or nothing) when the value is not in the table."""
    if not isinstance(table, dict) or not table:
        raise ParameterError("table must be a non-empty mapping")
    fold: Callable[[str], str] = str.lower if ignore_case else str
    prepared = {fold(java_string(k)): v for k, v in table.items()}

    def lookup(value: Any) -> Any:
        if value.__class__ is str:
            return prepared.get(fold(value), default)
        if isinstance(value, (list, dict)):
            return default
        return prepared.get(fold(java_string(value)), default)

    return lookup


@transform("only_urls", per_item=True, result=ValueType.KEYWORD)
def only_urls_transform() -> ValueFn:
    """Keep ``http(s)://`` URLs and drop other text (e.g. markdown reference blocks)."""
    return lambda value: value if isinstance(value, str) and _WEB_URL.match(value) else None


_WEB_URL = re.compile(r"https?://[^\s]+$", re.I)


# --- shape -----------------------------------------------------------------------------------


@transform("first", result=ValueType.SAME)
def first_transform() -> ValueFn:
    """First element of a list; a scalar is returned as it is."""
    return lambda value: (value[0] if value else None) if isinstance(value, list) else value


@transform("to_list", result=ValueType.SAME)
def to_list_transform() -> ValueFn:
    """Wrap a scalar in a list; a list is returned as it is."""
    return lambda value: value if isinstance(value, list) else [value]


@transform("split", result=ValueType.KEYWORD)
def split_transform(*, separator: str = ",") -> ValueFn:
    """Split text on ``separator`` into a list of trimmed, non-empty parts."""
    if not isinstance(separator, str) or not separator:
        raise ParameterError("separator must be a non-empty string")

    def split(value: Any) -> Any:
        if isinstance(value, list):
            return value
        return [p.strip() for p in java_string(value).split(separator) if p.strip()] or None

    return split


# --- domain-specific -------------------------------------------------------------------------


@transform("url_parts", result=ValueType.OBJECT)
def url_parts_transform() -> ValueFn:
    """URL text -> ECS ``url`` object (scheme, domain, port, path, query, fragment,
    extension, username, password, original), as Elastic's ``uri_parts`` processor."""
    return urls.url_parts


@transform("duration_ns", result=ValueType.LONG)
def duration_ns_transform() -> ValueFn:
    """``[start, end]`` normalised dates -> nanoseconds between them; nothing when the end
    precedes the start (Elastic writes a negative duration there)."""

    def duration(pair: Any) -> Any:
        start, end = (dates.parse_normalized(dates.normalize_date(v)) for v in pair)
        delta = end - start
        nanos = (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000
        return nanos if nanos >= 0 else None

    return duration


_CVSS_PREFIX = re.compile(r"\(?CVSS:(\d+\.\d+)/", re.ASCII)
_CVSS_V2 = re.compile(r"\(?AV:[LAN]/AC:[HML]/Au:[MSN]/C:[NPC]/I:[NPC]/A:[NPC]")


def cvss_version(vector: Any) -> str | None:
    if not isinstance(vector, str):
        return None
    if m := _CVSS_PREFIX.match(vector):
        return m[1]
    if _CVSS_V2.match(vector):
        return "2.0"
    return None


@transform("cvss_version", result=ValueType.KEYWORD)
def cvss_version_transform() -> ValueFn:
    """CVSS vector -> its version (``CVSS:3.1/...`` -> ``3.1``; a bare v2 vector -> ``2.0``);
    nothing for text that is not a CVSS vector."""
    return cvss_version


@transform("cvss_classification", result=ValueType.KEYWORD)
def cvss_classification_transform() -> ValueFn:
    """CVSS vector -> ``CVSS`` (the ECS ``vulnerability.classification``); nothing otherwise."""
    return lambda vector: "CVSS" if cvss_version(vector) else None


_ID_SCHEMES = (
    (re.compile(r"CVE-\d{4}-\d{4,}", re.I | re.ASCII), "CVE"),
    (re.compile(r"GHSA(-[23456789cfghjmpqrvwx]{4}){3}", re.I), "GHSA"),
    (re.compile(r"CWE-\d+", re.I | re.ASCII), "CWE"),
    (re.compile(r"SNYK-[A-Z0-9-]+", re.I), "SNYK"),
)


@transform("id_scheme", result=ValueType.KEYWORD)
def id_scheme_transform() -> ValueFn:
    """Vulnerability identifier -> its enumeration (``CVE``, ``GHSA``, ``CWE``, ``SNYK``);
    nothing for an unknown form, so no enumeration is ever guessed. A list uses its first item."""

    def scheme(value: Any) -> Any:
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, str):
            return None
        for regex, name in _ID_SCHEMES:
            if regex.fullmatch(value.strip()):
                return name
        return None

    return scheme


@transform("command_line_args", result=ValueType.KEYWORD)
def command_line_args_transform() -> ValueFn:
    """Command line -> list of arguments (Windows quoting rules when it looks like a Windows
    command line, POSIX shell rules otherwise); nothing if it cannot be split."""
    return commandline.split_command_line


@transform("executable_name", result=ValueType.KEYWORD)
def executable_name_transform() -> ValueFn:
    """Command line -> base name of its program (``"C:\\\\a b\\\\x.exe" -y`` -> ``x.exe``)."""

    def name(value: Any) -> Any:
        args = commandline.split_command_line(value)
        return re.split(r"[\\/]", args[0])[-1] or None if args else None

    return name


# --- whole objects ---------------------------------------------------------------------------

#: A text value made of CVE ids only (one, or several separated by commas, semicolons or
#: blanks), once the separators around it are stripped. Linear, also for search: it starts
#: with a literal, and the separators and the digits never compete for the same characters.
_CVE_VALUE = re.compile(r"CVE-\d{4}-\d{4,}(?:[\s,;]+CVE-\d{4}-\d{4,})*", re.I | re.ASCII)
_CVE_SEPARATORS = ",; \t\n\r\x0b\x0c"
_CVE_ID = re.compile(r"CVE-\d{4}-\d{4,}", re.I | re.ASCII)
_CVE_VALUE_STARTS = frozenset("Cc" + _CVE_SEPARATORS)
#: Bounds of one scan: values looked at, and ids returned.
MAX_SCANNED_VALUES = 10_000
MAX_CVE_IDS = 100


def _scan_cve_values(value: Any, found: list[str], budget: list[int]) -> None:
    """Add the CVE ids of every text value in ``value`` (objects and lists walked, depth
    first) to ``found``; ``budget`` counts down the values looked at."""
    cls = value.__class__
    items = value.values() if cls is dict else value if cls is list else (value,)
    budget[0] -= len(items)
    if budget[0] < 0:
        return
    for item in items:
        cls = item.__class__
        if cls is str:
            # Most text cannot start a CVE id: its first character says so before the regex.
            if item[:1] in _CVE_VALUE_STARTS and _CVE_VALUE.fullmatch(item.strip(_CVE_SEPARATORS)):
                found.extend(i for i in map(str.upper, _CVE_ID.findall(item)) if i not in found)
                if len(found) >= MAX_CVE_IDS:
                    return
        elif cls is dict or cls is list:
            _scan_cve_values(item, found, budget)


def _may_hold_cve_ids(value: Any) -> bool:
    """False when no text in ``value`` can hold a CVE id: its JSON text has no ``cve-`` in any
    case (orjson writes letters, digits and hyphens as they are, never escaped). Cheaper than
    the walk for the usual object holding none; larger texts are simply walked."""
    try:
        text = orjson.dumps(value)
    except TypeError:  # not JSON as it is (unpaired surrogates, huge integers): walked
        return True
    return len(text) > _PREFILTER_BYTES or _CVE_PREFIX.search(text.lower()) is not None


#: Largest JSON text :func:`_may_hold_cve_ids` lowercases (a copy) rather than walking the value.
_PREFILTER_BYTES = 1 << 20
#: A literal regex: its search scans for the first byte in C, which is faster here than
#: ``bytes.__contains__`` (whose skip table helps little for ``cve-`` in English text).
_CVE_PREFIX = re.compile(b"cve-")


@transform("cve_ids", result=ValueType.KEYWORD)
def cve_ids_transform() -> ValueFn:
    """CVE ids held as values anywhere in an object or a list, under any key (``cveTags``,
    ``identifiers``, ``id``, nested objects): every text value made of CVE ids only, the ids
    uppercase, in the order found, without duplicates (one id as text, several as a list);
    nothing if there is none. Text that merely mentions a CVE is not a CVE value. At most
    10,000 values are looked at and 100 ids returned."""

    def cve_ids(value: Any) -> Any:
        if not _may_hold_cve_ids(value):
            return None
        found: list[str] = []
        _scan_cve_values(value, found, [MAX_SCANNED_VALUES])
        return found[0] if len(found) == 1 else found[:MAX_CVE_IDS] or None

    return cve_ids


@transform("by_key", result=ValueType.ANY)
def by_key_transform(*, pattern: str) -> ValueFn:
    """The values of an object's keys whose name matches ``pattern`` (a regular expression
    searched in the key), in key order, lists flattened; nothing if there is none. For
    properties named by a convention rather than one name (``private_ip``, ``ip_address``,
    ``device_local_ip``). Only the object's own keys are looked at."""
    wanted = _compiled(pattern)
    matching: dict[tuple[str, ...], tuple[str, ...]] = {}  # key set -> its matching keys

    def by_key(value: Any) -> Any:
        if value.__class__ is not dict:
            return None
        names = tuple(value)
        keys = matching.get(names)
        if keys is None:
            keys = tuple(k for k in names if wanted.search(k))
            if len(matching) >= 1024:  # bounded: key sets repeat, so this rarely empties
                matching.clear()
            matching[names] = keys
        return keys_values(value, keys)

    return by_key


def keys_values(container: Any, keys: tuple[str, ...]) -> Any:
    """What ``by_key`` gives for an object whose keys matching its pattern are ``keys``, in
    its order: their values in a new list, lists flattened; nothing if there is none (or if
    ``container`` is no object). A program specialised to an entity's key shape knows the
    matching keys and calls this directly; a key removed meanwhile (by a failed coercion)
    gives nothing."""
    if container.__class__ is not dict:
        return None
    found: list[Any] = []
    for key in keys:
        item = container.get(key)
        if item.__class__ is list:
            found.extend(item)
        elif item is not None:
            found.append(item)
    return found or None


@transform("capitalize", per_item=True, result=ValueType.KEYWORD)
def capitalize_transform() -> ValueFn:
    """Text with its first letter in upper case, the rest as it is (``sonarqube`` -> ``Sonarqube``)."""

    def capitalize(value: Any) -> Any:
        text = java_string(value)
        return text[:1].upper() + text[1:] or None

    return capitalize
