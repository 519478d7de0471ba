"""Errors of the analysis a user can fix (a wrong path, a filter that matches nothing, results of another schema
version): AnalysisError, under the harness's one root (harness/errors.py).

The CLI prints them as one line, without a traceback, and exits with status 2 (harness/cli.py).
"""

from __future__ import annotations

from harness.errors import HarnessError, InputFileError, OutputError


class AnalysisError(HarnessError):
    """The analysis cannot do what its options ask with these results; the message names the option or the
    path and what would work."""


class ResultsInputError(AnalysisError, InputFileError):
    """A results tree given to read does not exist, holds no results, or none of its files can be read."""


class SchemaVersionError(ResultsInputError):
    """Results written with a schema version this analysis does not read."""


class AnalysisOutputError(AnalysisError, OutputError):
    """An --out the analysis cannot or must not write (a file, or a folder inside a results tree)."""
