"""References: blessed measurements that a run checks its points against (ReFrame's performance references,
with our statistics).

- ``format``: the records of a references file and their validation from a plain document (the one owner of
  the file's format: ``analysis.bless`` writes it, the runner reads it);
- ``check``: pure: a points row and its reference entry -> within / faster / slower / no_reference;
- ``files``: reading and writing the YAML file (the I/O edge).
"""

from harness.references.check import Check, check, reference_status
from harness.references.files import load, save
from harness.references.format import Entry, References, ReferencesError

__all__ = ["Check", "Entry", "References", "ReferencesError", "check", "load", "reference_status", "save"]
