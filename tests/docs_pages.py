"""The documentation the tests hold to the code: README.md and the pages under docs/, in mkdocs.yml's nav order,
and their fenced blocks.

Fence languages say what the tests do with a block: ``bash`` blocks are run (tests/test_readme.py, with tiny
sizes; docs/python-api.md's by tests/test_python_api.py); ``sh`` blocks are shown, not run here (they submit to
SLURM, need a GPU or a container tool), and are checked by the tests of what they call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs"
README = REPO / "README.md"
# Pages whose blocks another test runs: (page, the test file that runs them)
RUN_ELSEWHERE = {"python-api.md": "tests/test_python_api.py"}
# Generated from the code by a test; it holds no commands
GENERATED = {"results-schema.md"}
SHELL_RUN = "bash"
SHELL_NOT_RUN = "sh"


@dataclass(frozen=True)
class Block:
    """One fenced block of a page."""

    page: str  # "README.md" or the page's path under docs/
    lang: str
    text: str

    def commands(self) -> list[str]:
        """Its command lines: not blank, not a comment."""
        return [line for line in self.text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def nav_pages() -> list[str]:
    """The pages mkdocs.yml's nav lists, in order (paths under docs/)."""
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text())
    out: list[str] = []

    def walk(items) -> None:
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            if isinstance(value, list):
                walk(value)
            else:
                out.append(value)

    walk(config["nav"])
    return out


def doc_pages() -> list[str]:
    """Every page under docs/ that the site shows in its nav or should: not docs/validation/ nor the changelog
    fragments (mkdocs.yml's not_in_nav)."""
    return sorted(
        str(p.relative_to(DOCS))
        for p in DOCS.rglob("*.md")
        if p.relative_to(DOCS).parts[0] not in ("validation", "changelog.d")
    )


def text(page: str) -> str:
    return (README if page == "README.md" else DOCS / page).read_text()


def pages_run_here() -> list[str]:
    """README.md, then the nav's pages in order, but for those whose blocks another test runs or that are generated."""
    return ["README.md", *(p for p in nav_pages() if p not in RUN_ELSEWHERE and p not in GENERATED)]


def blocks(pages: list[str] | None = None) -> list[Block]:
    """The fenced blocks of those pages (default: every page, README first), in order."""
    out = []
    for page in ["README.md", *nav_pages()] if pages is None else pages:
        for lang, body in re.findall(r"```(\w*)\n(.*?)```", text(page), flags=re.S):
            out.append(Block(page, lang, body))
    return out


def combined_text() -> str:
    """README.md and the pages run here, one after the other (for the tests that look for a block by its words)."""
    return "\n".join(text(p) for p in pages_run_here())
