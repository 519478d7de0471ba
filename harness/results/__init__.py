"""The results tree's one owner: its layout, its schema, writing it (atomically, resumably) and reading it."""

from harness.results.read import TABLES, dataset, read

__all__ = ["TABLES", "dataset", "read"]
