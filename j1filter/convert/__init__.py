"""Value conversions: the transform registry and the parsers behind it (dates, URLs, names, command lines)."""
