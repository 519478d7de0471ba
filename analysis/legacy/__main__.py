"""`python -m analysis.legacy PATH... --out results-legacy`: see analysis.legacy.importer."""

import sys

from analysis.legacy.importer import main

sys.exit(main())
