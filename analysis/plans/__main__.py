"""``python -m analysis.plans``: make, show or export a per-layer plan (analysis.plans.cli)."""

import sys

from analysis.plans.cli import main

if __name__ == "__main__":
    sys.exit(main())
