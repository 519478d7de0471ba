"""Errors a user can act on: the CLI prints their message (no traceback) and exits with a non-zero code."""


class HarnessError(Exception):
    """Base class of every error the harness reports to the user in words."""


class ConfigError(HarnessError):
    """A configuration value is invalid; the message names the value and the valid choices."""


class DeviceMismatchError(HarnessError):
    """The configured GPU type is not what this machine has."""


class Cancelled(BaseException):
    """The job was cancelled (SIGTERM outside a checkpoint): stop, keep what was measured, say so."""


class StoreError(HarnessError):
    """The results directory cannot be written or read."""


def brief(e: BaseException) -> str:
    """An exception in one line for an error message: ``Type: its first line`` (at most 300 characters; an
    empty message stays empty, never an IndexError)."""
    first = next(iter(str(e).splitlines()), "")
    return f"{type(e).__name__}: {first[:300]}"
