"""Value conversions: the transforms and their registry, the coercion to each field type,
and the parsers behind them (dates, URLs, names, command lines)."""
