"""The per-entity runtime: checked mappings bound once (compiler), each kind of entity's
program generated (codegen) and kept in one bounded cache (program), documents built (mapper)."""
