"""The analysis runs without torch: importing it, computing every table and ``python -m analysis`` on a results
tree (predictor, figures and report included) load no ``torch`` module. Only tracing a model needs torch
(``analysis.layers``, and ``analysis.make_plan`` for the model's conv layers), imported where it is used.

Each check runs in a fresh interpreter: this one has torch loaded by other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.synthetic import Synthetic, default_models, generate

# The analysis modules that import torch themselves, for what only torch does (a model traced on the meta device).
TORCH_USERS = ("analysis.layers", "analysis.legacy.layers")


def _fresh(code: str, cwd: Path = REPO) -> dict:
    """Run ``code`` in a new interpreter (this checkout's packages first) and return the JSON it prints last."""
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={"PYTHONPATH": str(REPO), "PATH": str(Path(sys.executable).parent), "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


TORCH_LOADED = "sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))"


def test_every_analysis_module_imports_without_torch():
    """Every module of the analysis package but the tracer's, and the table registry's tables, load no torch."""
    got = _fresh(
        f"""
        import importlib, json, pkgutil, sys
        import analysis
        from analysis.tables import registry

        registry.tables()
        skip = {TORCH_USERS!r}
        names = [m.name for m in pkgutil.walk_packages(analysis.__path__, "analysis.")]
        mains = [n for n in names if n.endswith(".__main__")]  # running those is the command, below
        for name in names:
            if name not in skip and name not in mains:
                importlib.import_module(name)
        print(json.dumps({{"modules": len(names), "torch": {TORCH_LOADED}}}))
        """
    )
    assert got["modules"] > 50  # the walk found the package's modules
    assert got["torch"] == []


@pytest.fixture(scope="module")
def small_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("torch-free") / "results"
    generate(root, Synthetic(models=default_models(2, 4), gpus=("h100",), sizes=(64, 96, 128)))
    return root


def test_python_m_analysis_runs_without_torch(small_tree, tmp_path):
    """``python -m analysis TREE --predictor``: tables, predictor, figures and report, and no torch loaded."""
    out = tmp_path / "analysis"
    got = _fresh(
        f"""
        import json, runpy, sys

        sys.argv = ["python -m analysis", {str(small_tree)!r}, "--out", {str(out)!r}, "--predictor", "--threads", "1"]
        try:
            runpy.run_module("analysis", run_name="__main__")
        except SystemExit as e:
            code = e.code
        print(json.dumps({{"exit": code, "torch": {TORCH_LOADED}}}))
        """,
        cwd=tmp_path,
    )
    assert got == {"exit": 0, "torch": []}
    assert (out / "report.md").is_file()
    assert (out / "predictor" / "latency.pkl").is_file()  # the predictor ran, not skipped
    assert list((out / "figures").iterdir())


def test_load_tree_and_the_algorithm_names_without_torch(small_tree):
    """The Python API's load_tree, and the names harness.algorithms owns (read by the analysis), load no torch;
    what needs torch (swap, the references) loads on first use and is the same object as before."""
    got = _fresh(
        f"""
        import json, sys
        import analysis
        from harness import algorithms
        from harness.algorithms import ALGORITHMS, canonical_name, plan, registry

        res = analysis.load_tree({str(small_tree)!r})
        before = {TORCH_LOADED}
        names = {{"algorithms": list(ALGORITHMS), "alias": canonical_name("implicit precomp gemm"),
                  "directions": list(plan.DIRECTIONS), "points": len(res.points)}}
        import harness.algorithms.swap  # the submodule first: the package's swap stays the function
        from harness.algorithms import BACKEND_CHOICES, reference, swap
        gemm = registry.get("gemm")
        print(json.dumps({{
            "before": before, "names": names, "choices": list(BACKEND_CHOICES),
            "swap": [swap.__module__, swap.__name__, algorithms.swap is swap],
            "gemm": [gemm.reference.target is reference.gemm_runner, gemm.supports is None],
            "winograd": registry.get("winograd").supports.target is reference.winograd_supports,
        }}))
        """
    )
    assert got["before"] == []
    assert got["names"]["algorithms"][:3] == ["implicit_gemm", "implicit_precomp_gemm", "gemm"]
    assert got["names"]["algorithms"][-3:] == ["guess", "find", "torch"]
    assert got["names"]["alias"] == "implicit_precomp_gemm"
    assert got["names"]["directions"] == ["forward", "backward_data", "backward_filter"]
    assert got["names"]["points"] > 0
    assert got["choices"] == ["auto", "cudnn", "reference"]
    assert got["swap"] == ["harness.algorithms.swap", "swap", True]
    assert got["gemm"] == [True, True]
    assert got["winograd"] is True


def test_the_submodules_are_still_attributes_of_the_package():
    """Code that reads a submodule through the package (``harness.doctor``: ``algorithms.reference.
    REFERENCE_ALGORITHMS``) works as when every submodule was imported eagerly: imported on first use; a name
    that is neither an export nor a submodule is still an AttributeError."""
    got = _fresh(
        """
        import json
        from harness import algorithms

        subs = ["reference", "reference_backward", "flags", "autograd_conv", "memory_layout"]
        kinds = {s: type(getattr(algorithms, s)).__name__ for s in subs}
        try:
            algorithms.no_such_thing
            missing = "found"
        except AttributeError as e:
            missing = str(e)
        print(json.dumps({"kinds": kinds, "refs": list(algorithms.reference.REFERENCE_ALGORITHMS),
                          "missing": missing, "swap": callable(algorithms.swap)}))
        """
    )
    assert set(got["kinds"].values()) == {"module"}
    assert got["refs"] == ["direct", "gemm", "fft", "winograd"]
    assert "no attribute 'no_such_thing'" in got["missing"]
    assert got["swap"] is True
