"""The border between a command and the shell: one exit policy for every `python -m ...` entry point.

A ``HarnessError`` that reaches a command's ``main()`` becomes exactly one line on stderr, ``error: ...``, with
no traceback, and exit status 2; so does a usage error of its options (``ArgumentParser`` below). A check that
fails (acceptance FAIL, a regression found by analysis.compare, a doctor problem) is the command's own
exit status 1, returned by its ``main()``. Library code raises; only ``main()`` and ``__main__`` exit.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable
from typing import NoReturn, ParamSpec

from harness.errors import HarnessError, UsageError

REFUSED = 2  # the exit status of a refusal (0: success; 1: a check that failed, the command's own)
P = ParamSpec("P")


def error_line(e: HarnessError) -> str:
    """``error: <message>`` on one line (a message of several lines is joined with "; ")."""
    parts = [line.strip() for line in str(e).splitlines() if line.strip()]
    return "error: " + ("; ".join(parts) or type(e).__name__)


def refuse(e: HarnessError) -> int:
    """Print ``e`` as one line on stderr; the exit status of a refusal."""
    print(error_line(e), file=sys.stderr, flush=True)
    return REFUSED


def command(main: Callable[P, int]) -> Callable[P, int]:
    """Decorate a CLI's ``main(argv) -> int``: a HarnessError it raises is printed by ``refuse`` and the call
    returns 2, so that ``sys.exit(main())`` and Python callers of ``main`` see the same status."""

    @functools.wraps(main)
    def border(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except HarnessError as e:
            return refuse(e)

    return border


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with its usage errors raised as UsageError (one line, exit 2 at the border) rather than
    printed as usage plus message with SystemExit from inside the parser. ``--help`` still prints and exits 0."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{' '.join(message.splitlines())} (see {self.prog} --help)")
