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
