"""Fixtures for tests/logstash; the helpers themselves live in ls_helpers.py."""

from ls_helpers import confs, j1filter_on_path, require_j1filter  # noqa: F401  (pytest fixtures)
