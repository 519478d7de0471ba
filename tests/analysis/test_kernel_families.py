"""The kernel_families table: real CPU runs with kernels=true loaded through the analysis, and GPU-like rows
for the tensor-core verdicts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from analysis.load import load
from analysis.tables import registry
from analysis.tables.catalog.kernel_families import COLUMNS, kernel_families
from harness.run import runner
from tests.conftest import FAST
from tests.helpers import make_spec


@pytest.fixture(scope="module")
def kernel_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """torch's own convolutions and the reference gemm on resnet18 at 32 px, with the kernel pass."""
    root = tmp_path_factory.mktemp("kernels") / "results"
    for algo in ("torch", "gemm"):
        runner.run(make_spec(root, *FAST, f"algo={algo}", "kernels=true"))
    return root


def test_the_table_groups_real_runs_by_kernel_family(kernel_tree: Path):
    res = load(kernel_tree)
    table = registry.compute_all(res.points, res.layers)["kernel_families"]
    assert list(table.columns) == COLUMNS
    by_algo = {a: t for a, t in table.groupby("algo")}
    assert set(by_algo) == {"torch", "gemm"}
    # the reference gemm runs every layer as im2col + matmul; torch's CPU convolutions are oneDNN's or im2col's
    assert by_algo["gemm"]["kernel_family"].tolist() == ["gemm"] and by_algo["gemm"]["layers"].tolist() == [20]
    assert set(by_algo["torch"]["kernel_family"]) <= {"onednn", "im2col_gemm", "nnpack"}
    assert by_algo["torch"]["layers"].sum() == 20 and by_algo["torch"]["share"].sum() == pytest.approx(1.0)
    assert (table["tensor_cores"] == "unknown").all() and (table["tensor_core_layers"] == 0).all()  # the CPU
    assert (table["median_p50_ms"] > 0).all()


def test_tensor_core_verdicts_per_group():
    def rows(family: str, flags: list[bool | None], algo: str = "guess") -> list[dict]:
        return [
            {
                "gpu": "h100",
                "dtype": "float32",
                "math_type": "tensor_op",
                "algo": algo,
                "kernel_family": family,
                "model": "resnet50",
                "tensor_cores": flag,
                "status": "ok",
                "p50_ms": 0.1 * (i + 1),
                "host_bound": False,
                "detail": None,
            }
            for i, flag in enumerate(flags)
        ]

    layers = pd.DataFrame(
        rows("xmma_implicit_gemm", [True, True, True])
        + rows("implicit_precomp_gemm", [False, False])
        + rows("winograd", [False, None])
        + rows("cudnn_implicit_gemm", [True, False], algo="torch")
        + [{**rows("fft", [False])[0], "kernel_family": None}]  # kernels=false: left out
    )
    t = kernel_families(layers).set_index(["algo", "kernel_family"])
    assert t.loc[("guess", "xmma_implicit_gemm"), "tensor_cores"] == "yes"
    assert t.loc[("guess", "xmma_implicit_gemm"), "tensor_core_layers"] == 3
    assert t.loc[("guess", "implicit_precomp_gemm"), "tensor_cores"] == "no"
    assert t.loc[("guess", "winograd"), "tensor_cores"] == "mixed"  # one unknown: not called "no"
    assert t.loc[("torch", "cudnn_implicit_gemm"), "tensor_cores"] == "mixed"
    assert t.loc[("guess", "xmma_implicit_gemm"), "share"] == pytest.approx(3 / 7)
    assert t.loc[("guess", "xmma_implicit_gemm"), "median_p50_ms"] == pytest.approx(0.2)
    assert "fft" not in t.index.get_level_values("kernel_family")


def test_a_tree_without_the_column_gives_an_empty_table():
    assert list(kernel_families(pd.DataFrame({"gpu": ["h100"]})).columns) == COLUMNS
