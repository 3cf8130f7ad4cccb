"""The mapping language: YAML mapping files read with positions (loader) into checked specs (spec)."""
