"""The per-entity runtime: mappings compiled once into programs, then run on every entity."""
