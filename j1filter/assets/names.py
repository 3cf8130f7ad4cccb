"""Names of every asset, derived from the data stream's type, dataset and namespace, and the
collection schedule the latest view's retention follows from."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .._meta import DEFAULT_DATA_STREAM_TYPE, DEFAULT_DATASET, DEFAULT_NAMESPACE
from ..datastream import data_stream_problems
from ..errors import AssetNameError

_TRANSFORM_ID = re.compile(r"[a-z0-9](?:[a-z0-9_\-]*[a-z0-9])?")
_TRANSFORM_ID_MAX = 64
_DURATION = re.compile(r"([1-9][0-9]*)(s|m|h|d)")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """'90s', '30m', '1h', '7d' -> seconds."""
    m = _DURATION.fullmatch(text.strip())
    if not m:
        raise AssetNameError(
            f"duration {text!r}: expected a positive number and a unit s, m, h or d, e.g. 1h"
        )
    return int(m[1]) * _UNIT_SECONDS[m[2]]


def format_duration(seconds: int) -> str:
    """The largest whole unit Elasticsearch reads: 108000 -> '30h', 5400 -> '90m'."""
    for unit in ("d", "h", "m"):
        if seconds % _UNIT_SECONDS[unit] == 0:
            return f"{seconds // _UNIT_SECONDS[unit]}{unit}"
    return f"{seconds}s"


def retention_seconds(interval: int, full_interval: int) -> int:
    """How long the latest view keeps an entity no collection has seen again: one full interval
    plus a margin for a late or slow snapshot, max(2 x interval, full_interval / 4)."""
    return full_interval + max(2 * interval, full_interval // 4)


def _transform_id(text: str) -> str:
    """Transform ids allow only [a-z0-9_-] (no dots), at most 64 characters."""
    candidate = text.replace(".", "_")
    if len(candidate) > _TRANSFORM_ID_MAX:
        digest = hashlib.sha256(text.encode()).hexdigest()[:10]
        candidate = f"{candidate[: _TRANSFORM_ID_MAX - 11].rstrip('_-')}-{digest}"
    assert _TRANSFORM_ID.fullmatch(candidate), candidate
    return candidate


@dataclass(frozen=True)
class Names:
    """Every name the bundle creates, for one data stream type/dataset/namespace and schedule."""

    type: str = DEFAULT_DATA_STREAM_TYPE
    dataset: str = DEFAULT_DATASET
    namespace: str = DEFAULT_NAMESPACE
    interval: str = "1h"
    full_interval: str = "24h"

    def __post_init__(self) -> None:
        problems = data_stream_problems(self.type, self.dataset, self.namespace)
        if problems:
            raise AssetNameError("; ".join(problems))
        if self.full_interval_seconds < 60:
            # below that the transform's retention (>= 60s in Elasticsearch) and its 120s sync delay make no sense
            raise AssetNameError(f"--full-interval {self.full_interval} is shorter than 1m")
        if self.full_interval_seconds < self.interval_seconds:
            raise AssetNameError(
                f"--full-interval {self.full_interval} is shorter than --interval {self.interval}"
            )

    @property
    def interval_seconds(self) -> int:
        return parse_duration(self.interval)

    @property
    def full_interval_seconds(self) -> int:
        return parse_duration(self.full_interval)

    @property
    def retention(self) -> str:
        return format_duration(retention_seconds(self.interval_seconds, self.full_interval_seconds))

    @property
    def stem(self) -> str:
        """`logs-jupiter_one.risks_and_alerts`: the data streams of every namespace share it."""
        return f"{self.type}-{self.dataset}"

    @property
    def data_stream(self) -> str:
        return f"{self.stem}-{self.namespace}"

    # Elasticsearch objects shared by every namespace of the stem
    @property
    def ilm_policy(self) -> str:
        return f"j1filter-{self.stem}"

    @property
    def final_pipeline(self) -> str:
        return f"j1filter-{self.stem}-final"

    @property
    def settings_component(self) -> str:
        return f"j1filter-{self.stem}@settings"

    ecs_component = "j1filter-ecs@mappings"
    jupiter_one_component = "j1filter-jupiter_one@mappings"

    @property
    def source_template(self) -> str:
        return f"j1filter-{self.stem}"

    @property
    def latest_template(self) -> str:
        return f"j1filter-latest-{self.stem}"

    # The latest view, one per namespace. Outside `logs-*` on purpose: Elastic's dashboards read
    # `logs-*` with `labels.is_transform_source: "false"` and would count these entities again.
    @property
    def latest_alias(self) -> str:
        return f"j1filter-latest-{self.data_stream}"

    @property
    def latest_index(self) -> str:
        return f"{self.latest_alias}-1"

    @property
    def transform(self) -> str:
        return _transform_id(f"j1filter-latest-{self.data_stream}")

    @property
    def is_default(self) -> bool:
        return (self.type, self.dataset, self.namespace) == (
            DEFAULT_DATA_STREAM_TYPE,
            DEFAULT_DATASET,
            DEFAULT_NAMESPACE,
        )
