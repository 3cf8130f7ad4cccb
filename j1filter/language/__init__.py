"""The mapping language, compiled in stages: YAML read with positions (marked_yaml), parsed
into specs (parser, spec), checked for names, targets and types (check); the files to read
(loader). Binding to functions is the runtime's (j1filter.runtime.compiler)."""
