"""Errors a user can act on, under one root.

Every command prints a ``HarnessError`` as one line on stderr (``error: ...``, no traceback) and exits with
status 2 (harness/cli.py owns that border); Python callers get the typed exception. The direct subclasses
say what the user can do; the names each part of the harness raises (ConfigError, PlanError,
ReferencesError, AnalysisError, LegacyError, ...) are subclasses of them, so ``except PlanError`` still works.
Anything else that escapes a command is a bug, and keeps its traceback.
"""


class HarnessError(Exception):
    """Base class of every error the harness reports to the user in words."""


class ConfigError(HarnessError):
    """A value given (an option, a config key, a setting) is not valid: change it. The message names the value
    and the valid choices."""


class UsageError(ConfigError):
    """The command line does not parse: an unknown option, a missing argument, a value of the wrong type."""


class InputFileError(HarnessError):
    """A file or folder given to read is missing, unreadable or not what it should be (a malformed plan, a
    foreign references file, no results tree): fix the path or the file. The message names the file."""


class OutputError(HarnessError):
    """A path to write cannot be written, or must not be (it would mix with real results): choose another.
    The message names the path."""


class MissingEnvironmentError(HarnessError):
    """This machine lacks what the command needs (a CUDA GPU, cuDNN, the GPU type asked for): run it where
    that exists, or ask for what this machine has."""


class DeviceMismatchError(MissingEnvironmentError):
    """The configured GPU type is not what this machine has."""


class Cancelled(BaseException):
    """The job was cancelled (SIGTERM outside a checkpoint): stop, keep what was measured, say so."""


class StoreError(OutputError):
    """The results directory cannot be written."""


def brief(e: BaseException) -> str:
    """An exception in one line for an error message: ``Type: its first line`` (at most 300 characters; an
    empty message stays empty, never an IndexError)."""
    first = next(iter(str(e).splitlines()), "")
    return f"{type(e).__name__}: {first[:300]}"
