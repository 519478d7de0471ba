"""The Python API (docs/python-api.md): its examples run as written, its errors are the command line's, and
its result objects print what a reader needs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
import torch

import analysis
import harness
from harness.errors import ConfigError
from harness.measure.point import PointResult
from tests.conftest import REPO

PAGE = (REPO / "docs" / "python-api.md").read_text()
# the page's sweep, kept short here: fewer timed iterations, no energy window (the layer pass as written)
QUICK = ["stage.min_iters=6", "stage.max_iters=6", "stage.energy_window_s=0"]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", PAGE, flags=re.S)


@pytest.mark.slow
def test_the_page_runs_as_written(tmp_path, monkeypatch):
    """The sweep the page shows, then every Python block in order, in one folder: a drifted name fails."""
    (sweep,) = _blocks("bash")
    args = shlex.split(sweep.strip())
    assert args[:3] == ["python", "-m", "harness"]
    done = subprocess.run([sys.executable, *args[1:], *QUICK], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    monkeypatch.chdir(tmp_path)
    blocks = _blocks("python")
    assert len(blocks) == 4
    for block in blocks:
        exec(compile(block, "docs/python-api.md", "exec"), {})  # noqa: S102 - the page's own code
    assert (tmp_path / "plan.json").is_file()


def test_import_is_light():
    """``import harness`` / ``import analysis`` load no torch: config-only commands stay fast."""
    code = "import sys, harness, analysis; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("package", [harness, analysis])
def test_every_exported_name_resolves(package):
    for name in package.__all__ if hasattr(package, "__all__") else package._EXPORTS:
        assert getattr(package, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        package.nope  # noqa: B018


def test_a_bad_value_is_refused_before_anything_is_measured():
    with pytest.raises(ConfigError, match=r"algo=bogus is not valid; valid choices: .*direct"):
        harness.measure_point("resnet18", "bogus")
    with pytest.raises(ConfigError, match="input size 0"):
        harness.measure_point("resnet18", "direct", input_size=0)


def test_a_bad_filter_names_the_valid_ones(tmp_path):
    with pytest.raises(analysis.AnalysisError, match=r"filter 'modle' is not valid; valid choices: stage, gpu, model"):
        analysis.load_tree(tmp_path, modle="resnet18")


def test_results_print_a_summary():
    point = harness.measure_point("resnet18", "direct", input_size=32, overrides=["stage.energy_window_s=0"])
    text = repr(point)
    assert text.startswith("<harness.measure.point.PointResult>\n  input 32, batch 1, backend reference: ok")
    assert "verified against torch: True" in text
    assert re.search(r"median [\d.]+ ms, 95% CI \[[\d.]+, [\d.]+\] ms", text)
    assert "20 conv layers, 5 iterations each" in text  # the sanity stage's layer pass
    profile = repr(point.profile)
    assert profile.startswith("<harness.measure.profiler.Profile>\n  median ")
    assert repr(point.profile.timing).startswith("<harness.measure.timing.Timing: median ")
    failed = PointResult(64, 2, "unsupported", error="3 of 20 conv layers cannot run winograd")
    assert repr(failed) == (
        "<harness.measure.point.PointResult>\n  input 64, batch 2, backend None: unsupported "
        "(3 of 20 conv layers cannot run winograd)"
    )


def test_profile_of_any_module_with_a_swapped_algorithm():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU()).eval()
    x = torch.randn(1, 3, 16, 16)
    settings = harness.ProfileSettings(harness.SamplingPolicy(min_iters=6, max_iters=6), layer_iters=6)
    with harness.swap(model, "gemm", backend="reference"):
        result = harness.profile(model, x, settings)
    assert result.timing.n == 6
    assert "1 conv layers, 6 iterations each" in str(result)
