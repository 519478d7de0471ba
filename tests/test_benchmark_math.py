"""benchmarks/algorithms.py times cuDNN and F.conv2d with the same math: PyTorch's TF32 flags follow
--math for the whole run (a strict-FP32 cuDNN plan against a TF32 F.conv2d would flatter F.conv2d), and
are put back afterwards."""

from __future__ import annotations

import importlib.util
import sys

import pytest
import torch

from tests.conftest import REPO


def _load():
    spec = importlib.util.spec_from_file_location("bench_algorithms", REPO / "benchmarks" / "algorithms.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("math", "tf32"), [("fma", False), ("tensor_op", True)])
def test_both_sides_run_the_asked_math(monkeypatch: pytest.MonkeyPatch, math: str, tf32: bool):
    bench = _load()
    seen = []
    monkeypatch.setattr(
        bench, "layer_table", lambda size, device, m: seen.append((m, torch.backends.cudnn.allow_tf32)) or ""
    )
    monkeypatch.setattr(sys, "argv", ["algorithms.py", "--device", "cpu", "--math", math])
    before = torch.backends.cudnn.allow_tf32
    bench.main()
    assert seen == [(math, tf32)] and torch.backends.cudnn.allow_tf32 == before
