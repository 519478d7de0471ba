"""The answer tables, one module each declaring ``TABLE`` (analysis.tables.registry finds them all)."""
