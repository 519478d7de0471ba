"""Write docs/changelog.md from the fragments in docs/changelog.d/ (one per change, written with it).

Each fragment starts with a ``# Title`` line; in the changelog every heading goes one level down, so each
fragment is one ``##`` section, in the order of the fragments' file names. tests/test_changelog.py holds
docs/changelog.md to this: run ``python scripts/changelog.py`` after adding or editing a fragment.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"
FRAGMENTS = DOCS / "changelog.d"
CHANGELOG = DOCS / "changelog.md"
HEAD = """# Changelog

The changes of the current release, one section per change, collected from the fragments in
`docs/changelog.d/` by `python scripts/changelog.py` (one fragment per change, written with it; the
fragments stay out of the site's nav).
"""


def section(path: Path) -> str:
    """One fragment as a section of the changelog: its headings one level down."""
    text = path.read_text().strip()
    if not text.startswith("# "):
        raise ValueError(f"{path}: a fragment starts with a '# Title' line")
    return re.sub(r"^(#+) ", r"#\1 ", text, flags=re.MULTILINE)


def changelog() -> str:
    return "\n\n".join([HEAD.rstrip(), *(section(p) for p in sorted(FRAGMENTS.glob("*.md")))]) + "\n"


if __name__ == "__main__":
    CHANGELOG.write_text(changelog())
    print(f"wrote {CHANGELOG} from {len(list(FRAGMENTS.glob('*.md')))} fragments", file=sys.stderr)
