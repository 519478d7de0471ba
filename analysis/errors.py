"""Errors a user can fix (a wrong path, a filter that matches nothing, results of another schema version).

The CLI prints them as one line, without a traceback, and exits with status 2.
"""

from __future__ import annotations


class AnalysisError(Exception):
    """A problem with the input or the options, explained in words a user can act on."""


class SchemaVersionError(AnalysisError):
    """Results written with a schema version this analysis does not read."""
