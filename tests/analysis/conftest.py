"""Synthetic results trees with known answers, shared by the analysis tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.synthetic import Geometry, Synthetic, generate

# Two small CNNs (in, out, kernel, stride, pad, groups): 3x3 stride-1 layers (winograd's), others (not).
MODELS = {
    "alpha": [(3, 16, 3, 2, 1, 1), (16, 32, 3, 1, 1, 1), (32, 32, 1, 1, 0, 1), (32, 64, 3, 1, 1, 1)],
    "beta": [(3, 8, 5, 2, 2, 1), (8, 16, 3, 1, 1, 1), (16, 16, 1, 1, 0, 1)],
}
SIZES = (32, 48, 64)
# Time multipliers over torch: gemm exactly twice as fast as torch everywhere, guess 0.8, direct 3x slower;
# winograd 0.4 but only on 3x3 stride-1 layers (elsewhere it falls back to torch); fft 0.9, but on v100 it
# cannot run 1x1 layers (no fallback: those points are "unsupported").
FACTORS = {"torch": 1.0, "gemm": 0.5, "guess": 0.8, "direct": 3.0, "winograd": 0.4, "fft": 0.9}
POWER = {"h100": 300.0, "v100": 250.0}


def base_ms(geo: Geometry) -> np.ndarray:
    return geo["flops"] / 1e7 + 0.01


def winograd_ok(geo: Geometry) -> np.ndarray:
    return (geo["kernel_h"] == 3) & (geo["stride_h"] == 1)


def known_law(geo: Geometry, algo: str, gpu: str) -> np.ndarray:
    t = base_ms(geo) * FACTORS[algo]
    if algo == "winograd":
        t = np.where(winograd_ok(geo), t, np.nan)
    if algo == "fft" and gpu == "v100":
        t = np.where(geo["kernel_h"] == 1, np.nan, t)
    return t


def known(**changes) -> Synthetic:
    return Synthetic(
        models=MODELS,
        gpus=("h100", "v100"),
        algos=tuple(FACTORS),
        sizes=SIZES,
        layer_ms=known_law,
        fallback={"winograd": "torch"},
        remainder_fraction=0.0,
        power_w=dict(POWER),
        **changes,
    )


@pytest.fixture(scope="session")
def known_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("known") / "results"
    generate(root, known())
    return root


@pytest.fixture(scope="session")
def repeated_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tree, every point measured twice: an earlier run 1.5x slower, then the truth."""
    root = tmp_path_factory.mktemp("repeated") / "results"
    generate(root, known(repeats=2, stale_factor=1.5))
    return root


@pytest.fixture(scope="module")
def res(known_tree: Path):
    """The known tree, loaded (one load per test module)."""
    from analysis.load import load

    return load(known_tree)


@pytest.fixture(scope="session")
def known_report(known_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The analysis of the known tree with its figures (no predictor): the folder holding report.html."""
    from analysis import pipeline

    out = tmp_path_factory.mktemp("report") / "analysis"
    pipeline.run(known_tree, out)
    return out
