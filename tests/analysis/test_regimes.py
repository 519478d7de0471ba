"""The ``regimes`` table on a synthetic tree: the ranking per (batch, dtype, layout), how it moves from the
base regime, and NCHW and NHWC points kept apart (here and in the tables grouping by POINT); rows written
before the layout column read as nchw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.load import load
from analysis.tables import registry
from analysis.tables.catalog.algorithms import algorithms
from analysis.tables.catalog.best import best
from analysis.tables.catalog.regimes import kendall_tau, regimes
from tests.synthetic import point_row, write_points

# p50 (ms) per regime (batch, dtype, layout) and algorithm; None: unsupported there
LAW: dict[tuple[int, str, str | None], dict[str, float | None]] = {
    (1, "float32", None): {"guess": 1.0, "torch": 1.1, "implicit_precomp_gemm": 1.2, "fft_tiling": 2.0},
    (1, "float16", "nhwc"): {"guess": 0.5, "torch": 0.45, "implicit_precomp_gemm": 0.4, "fft_tiling": None},
    (32, "float32", "nchw"): {"guess": 9.0, "torch": 9.5, "implicit_precomp_gemm": 12.0, "fft_tiling": 8.0},
}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("regimes")
    rows = []
    for (batch, dtype, layout), times in LAW.items():
        for algo, p50 in times.items():
            axes = {"batch_size": batch, "dtype": dtype, "algo": algo, "run": f"{algo}-{batch}-{dtype}"}
            if layout is not None:  # None: a row written before the layout column (read as nchw)
                axes["layout"] = layout
            extra = {"status": "unsupported"} if p50 is None else {}
            rows.append(point_row(224, p50, **axes, **extra))
    write_points(root, rows)
    return root


def test_the_ranking_per_regime_and_its_movement_from_the_base(tree: Path):
    points = load(tree).points
    assert set(points["layout"].astype(str)) == {"nchw", "nhwc"}  # the old rows filled as nchw
    table = registry.get("regimes").compute(algorithms(points))
    table = table.set_index(["batch_size", table["dtype"].astype(str), table["layout"].astype(str)])
    base = table.loc[(1, "float32", "nchw")]
    assert base["ranking"] == "guess > torch > implicit_precomp_gemm > fft_tiling" and base["kendall_tau"] == 1.0
    assert base["base_regime"] == "batch 1, float32, nchw" and not base["fastest_changed"]
    half = table.loc[(1, "float16", "nhwc")]
    assert half["ranking"] == "implicit_precomp_gemm > torch > guess" and half["algos_ranked"] == 3
    assert half["fastest"] == "implicit_precomp_gemm" and half["fastest_changed"]
    assert half["fastest_p50_ms"] == pytest.approx(0.4)
    assert half["kendall_tau"] == pytest.approx(-1.0)  # the three in common, in reverse order
    assert np.isnan(half["rank[fft_tiling]"])  # unsupported in that regime: not ranked
    big = table.loc[(32, "float32", "nchw")]
    assert big["fastest"] == "fft_tiling" and big["fastest_changed"]
    # pairs against the base order g<t<i<f: (g,t)+ (g,i)+ (g,f)- (t,i)+ (t,f)- (i,f)-  -> 0
    assert big["kendall_tau"] == pytest.approx(0.0)
    assert (big["rank[fft_tiling]"], big["rank[implicit_precomp_gemm]"]) == (1.0, 4.0)


def test_tables_grouping_points_never_mix_layouts(tree: Path):
    points = load(tree).points
    # the same point but for the layout: both stay, as two points, in the tables grouping by POINT
    twin = points[(points["batch_size"] == 1) & (points["dtype"].astype(str) == "float16")].copy()
    twin["layout"] = "nchw"
    twin["p50_ms"] = twin["p50_ms"] * 10
    both = pd.concat([points, twin], ignore_index=True)
    b = best(algorithms(both))
    half = b[(b["batch_size"] == 1) & (b["dtype"].astype(str) == "float16")].set_index("layout")
    assert sorted(half.index.astype(str)) == ["nchw", "nhwc"]
    assert half.loc["nhwc", "best_p50_ms"] == pytest.approx(0.4)
    assert half.loc["nchw", "best_p50_ms"] == pytest.approx(4.0)


def test_kendall_tau_and_an_empty_table():
    assert kendall_tau({"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2, "c": 3}) == 1.0
    assert kendall_tau({"a": 1, "b": 2}, {"a": 2, "b": 1}) == -1.0
    assert np.isnan(kendall_tau({"a": 1}, {"a": 1, "b": 2}))
    empty = regimes(
        pd.DataFrame(
            columns=["stage", "gpu", "model", "input_size", "batch_size", "dtype", "layout", "algo", "p50_ms", "rank"]
        )
    )
    assert empty.empty and "kendall_tau" in empty.columns


def test_the_report_shows_the_regimes_only_where_a_place_has_several(tree: Path):
    from analysis.report import render
    from analysis.report.sections import regimes_section

    table = regimes(algorithms(load(tree).points))
    shown = render.Section("Fastest algorithm")
    regimes_section(shown, table)
    (block,) = [b for b in shown.blocks if b.kind == "table"]
    assert "kendall_tau" in block.content.columns and len(block.content) == 3
    one = render.Section("Fastest algorithm")
    regimes_section(one, table[table["batch_size"] == 32])
    assert one.blocks == []


def test_the_vectorised_table_is_the_point_by_point_one(tree: Path, tmp_path: Path):
    """``regimes`` (vectorised over the points) gives the very frame ``regimes_by_point`` (the straightforward
    loop) gives: here, and on a campaign of several models, GPUs, sizes, batches and fallbacks."""
    from analysis.tables.catalog.regimes import regimes_by_point
    from tests.synthetic import Synthetic, default_models, generate

    algos = algorithms(load(tree).points)
    pd.testing.assert_frame_equal(regimes(algos), regimes_by_point(algos))
    generate(
        tmp_path / "results",
        Synthetic(
            models=default_models(n_models=2, n_layers=4, seed=5),
            gpus=("h100", "l40s"),
            algos=("torch", "guess", "implicit_gemm", "winograd", "fft"),
            sizes=(32, 48, 64),
            batch_sizes=(1, 4, 16),
            fallback={"winograd": "torch"},
            power_w={"h100": 300.0, "l40s": 250.0},
            noise=0.05,
            seed=5,
        ),
    )
    algos = algorithms(load(tmp_path / "results").points)
    fast = regimes(algos)
    assert len(fast) == 2 * 2 * 3 * 3 and fast["kendall_tau"].notna().all()
    pd.testing.assert_frame_equal(fast, regimes_by_point(algos))
