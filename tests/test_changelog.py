"""docs/changelog.md is the fragments of docs/changelog.d/, as scripts/changelog.py writes them."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _script():
    spec = importlib.util.spec_from_file_location("changelog_script", REPO / "scripts" / "changelog.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_changelog_is_the_fragments():
    script = _script()
    assert script.CHANGELOG.read_text() == script.changelog(), "run: python scripts/changelog.py"


def test_every_fragment_is_a_section_of_it():
    script = _script()
    text = script.CHANGELOG.read_text()
    for path in script.FRAGMENTS.glob("*.md"):
        title = path.read_text().splitlines()[0].removeprefix("# ")
        assert f"\n## {title}\n" in text, path.name


def test_a_fragment_without_a_title_is_refused(tmp_path):
    bad = tmp_path / "x.md"
    bad.write_text("- a change without a title\n")
    with pytest.raises(ValueError, match=r"x\.md: a fragment starts with a '# Title' line"):
        _script().section(bad)


def test_headings_go_one_level_down(tmp_path):
    frag = tmp_path / "y.md"
    frag.write_text("# Title\n\n## Part\n\ntext # not a heading\n")
    assert _script().section(frag) == "## Title\n\n### Part\n\ntext # not a heading"
