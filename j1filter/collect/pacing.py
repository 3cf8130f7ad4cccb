"""When to send the next GraphQL request, and how long to wait after a failure.

`Pacer` paces by J1's own answer: every response's ``RateLimit-Remaining`` and
``RateLimit-Reset`` say how many requests the account has left and when the bucket is full
again. While requests remain it sends at once (a tier with burst is used in bursts); when none
remain it waits until the reset. ``--rate-limit`` is a ceiling on top (requests evenly spaced,
never more than that many a minute), and a 429 waits at least ``Retry-After`` or
``RateLimit-Reset``. `RetryPolicy` bounds the retries of a failed attempt.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

#: A server-given wait above this is taken as this: a hostile header cannot park the collector.
MAX_SERVER_WAIT = 3600.0


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries: at most `max_attempts` tries, no single wait above `max_delay` seconds."""

    max_attempts: int = 10
    base_delay: float = 2.0
    max_delay: float = 60.0

    def delay(self, attempt: int, wait_hint: float, rng: Callable[[], float] = random.random) -> float:
        """Full-jitter exponential backoff, at least the server's hint, capped at `max_delay`."""
        backoff = rng() * min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return min(self.max_delay, max(backoff, wait_hint))


@dataclass(frozen=True)
class RateLimitState:
    """What one answer's RateLimit-* headers said (None: not sent or not readable)."""

    limit: int | None
    remaining: int | None
    reset_seconds: float | None


class Pacer:
    """Sends as fast as the account allows and never faster than `ceiling_per_minute` (0: no
    ceiling). A wait the server asks for is capped at `max_wait` (--max-retry-wait)."""

    def __init__(
        self,
        ceiling_per_minute: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        max_wait: float = MAX_SERVER_WAIT,
    ) -> None:
        self._max_wait = max_wait
        self._spacing = 60.0 / ceiling_per_minute if ceiling_per_minute > 0 else 0.0
        self._clock = clock
        self._sleep = sleep
        self._next_slot: float | None = None  # the ceiling's next free moment
        self._blocked_until = 0.0  # the server said: nothing left until then
        self.last: RateLimitState = RateLimitState(None, None, None)
        self.waited = 0.0

    def acquire(self) -> None:
        """Wait (if needed) before sending one request."""
        now = self._clock()
        start = max(now, self._blocked_until, self._next_slot or now)
        if start > now:
            self._sleep(start - now)
            self.waited += start - now
        if self._spacing:
            self._next_slot = start + self._spacing

    def observe(self, headers: Mapping[str, str]) -> None:
        """Read the RateLimit-* headers of an answer (any answer, 429 included)."""
        state = rate_limit_state(headers)
        self.last = state
        if state.remaining is not None and state.remaining <= 0:
            wait = min(self._max_wait, state.reset_seconds if state.reset_seconds is not None else 1.0)
            self._blocked_until = max(self._blocked_until, self._clock() + wait)


def rate_limit_state(headers: Mapping[str, str]) -> RateLimitState:
    return RateLimitState(
        _first_number(headers.get("ratelimit-limit")),
        _first_number(headers.get("ratelimit-remaining")),
        _seconds(headers.get("ratelimit-reset")),
    )


def server_wait_hint(headers: Mapping[str, str] | None) -> float:
    """Seconds the server asked us to wait, from Retry-After (seconds or HTTP date) or RateLimit-Reset."""
    if not headers:
        return 0.0
    return max(_seconds(headers.get("retry-after")) or 0.0, _seconds(headers.get("ratelimit-reset")) or 0.0)


def _first_number(value: str | None) -> int | None:
    """`1000, 1000;window=60` -> 1000 (J1 lists the bucket that applies first)."""
    if not value:
        return None
    head = value.split(",", 1)[0].split(";", 1)[0].strip()
    return int(head) if head.isascii() and head.isdigit() and len(head) <= 12 else None


def _seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()[:100]
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # nan
        return None
    return min(MAX_SERVER_WAIT, max(0.0, seconds))
