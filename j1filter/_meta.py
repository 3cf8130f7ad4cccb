"""Constants shared across the package: versions and data stream defaults."""

__version__ = "0.1.0"

#: ECS version written to ``ecs.version`` (the one Elastic's JupiterOne integration writes).
ECS_VERSION = "9.2.0"

#: Version of the YAML mapping format this release reads.
MAPPING_FORMAT_VERSION = 1

DEFAULT_DATA_STREAM_TYPE = "logs"
DEFAULT_DATASET = "jupiter_one.risks_and_alerts"
DEFAULT_NAMESPACE = "default"
EVENT_MODULE = "jupiter_one"

#: Tag that keeps the raw duplicates of ECS-copied fields (Elastic's option of the same name).
PRESERVE_DUPLICATES_TAG = "preserve_duplicate_custom_fields"
#: Tag Elastic appends to any document that carries an error.
ERROR_TAG = "preserve_original_event"
