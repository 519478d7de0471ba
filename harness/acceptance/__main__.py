"""``python -m harness.acceptance``: the command (harness.acceptance.cli)."""

import sys

from harness.acceptance.cli import main

if __name__ == "__main__":
    sys.exit(main())
