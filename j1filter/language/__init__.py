"""The mapping language: YAML mapping files read with positions (loader) into checked specs
(spec), and the types of the fields rules write (types)."""
