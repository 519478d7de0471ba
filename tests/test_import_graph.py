"""No import knots: the folder-level import graph has no cycles."""

from __future__ import annotations

from pathlib import Path

from tests.import_graph import folder_cycles, module_edges

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "analysis", "hydra_plugins")

# Knots present when this test was written (issue 28); each entry must be
# removed as its knot is untied. The test fails on any cycle not listed here
# and on any listed cycle that no longer exists.
KNOWN_KNOTS: list[list[str]] = []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_no_new_import_cycles() -> None:
    cycles = sorted(folder_cycles(module_edges(ROOT, PACKAGES)))
    assert cycles == sorted(KNOWN_KNOTS)


def test_harness_never_imports_hydra_plugins() -> None:
    edges = module_edges(ROOT, PACKAGES)
    back = sorted((a, b) for a, b in edges if a.startswith("harness.") and b.startswith("hydra_plugins."))
    assert back == []


def test_checker_finds_a_sibling_cycle(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "from . import a\n",
            "pkg/c.py": "import pkg.a\n",
        },
    )
    assert folder_cycles(module_edges(tmp_path, ["pkg"])) == [["pkg.a", "pkg.b"]]


def test_checker_ignores_type_checking_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg import a\n",
        },
    )
    assert folder_cycles(module_edges(tmp_path, ["pkg"])) == []


def test_checker_counts_imports_inside_functions(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg import b\n",
            "pkg/b.py": "def f():\n    from pkg.a import x\n    return x\n",
        },
    )
    assert folder_cycles(module_edges(tmp_path, ["pkg"])) == [["pkg.a", "pkg.b"]]


def test_checker_finds_an_arrow_back_up(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub.m import x\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/m.py": "import pkg\nx = 1\n",
        },
    )
    assert folder_cycles(module_edges(tmp_path, ["pkg"])) == [["pkg.__init__", "pkg.sub"]]


def test_checker_from_package_import_submodule_is_not_a_cycle(tmp_path: Path) -> None:
    # ``from pkg import b`` names the module pkg.b, not the package's __init__.
    _write(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.a import x\n",
            "pkg/a.py": "from pkg import b\nx = 1\n",
            "pkg/b.py": "",
        },
    )
    assert folder_cycles(module_edges(tmp_path, ["pkg"])) == []
