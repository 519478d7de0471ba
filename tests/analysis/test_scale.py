"""What makes the analysis fit a campaign's scale (benchmarks/analysis_scale.py) changes no answer: the layers'
integers read as int32, the tables over them computed as before, on trees with noise, repeats, fallbacks and
several batch sizes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import pipeline
from analysis.tree import load, loader, read
from tests.synthetic import Synthetic, default_models, generate


@pytest.fixture(scope="module")
def busy_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small campaign like the benchmark's: noise, two runs of every point (latest wins), fallbacks,
    unsupported points, three batch sizes, depthwise layers."""
    root = tmp_path_factory.mktemp("scale") / "results"
    generate(
        root,
        Synthetic(
            models=default_models(n_models=3, n_layers=14, seed=3),
            gpus=("h100", "l40s"),
            algos=("torch", "guess", "implicit_gemm", "gemm", "winograd", "fft", "direct"),
            sizes=(32, 48, 64),
            batch_sizes=(1, 4, 16),
            fallback={"winograd": "torch"},
            power_w={"h100": 300.0, "l40s": 250.0},
            noise=0.05,
            repeats=2,
            seed=1,
        ),
    )
    return root


def tables(root: Path) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    res = load(root)
    return res.layers, pipeline.compute_tables(res)


def test_the_layers_integers_are_read_as_int32_and_every_table_is_unchanged(busy_tree, monkeypatch):
    layers, after = tables(busy_tree)
    with monkeypatch.context() as m:
        m.setattr(read, "INT32", {})  # as before: every integer column int64
        m.setattr(loader, "INT32", {})
        wide, before = tables(busy_tree)
    assert all(layers[c].dtype == np.int32 for c in read.INT32["layers"]), layers.dtypes
    assert all(wide[c].dtype == np.int64 for c in read.INT32["layers"])
    assert (layers["flops"].dtype, layers["bytes"].dtype) == (np.int64, np.int64)  # they do not fit
    pd.testing.assert_frame_equal(layers, wide, check_dtype=False)
    assert before.keys() == after.keys()
    assert len(after["layer_speedups"]) and len(after["oracle"]) and len(after["layer_shapes"])
    for name in before:
        pd.testing.assert_frame_equal(after[name], before[name], check_dtype=False, obj=name)


def test_a_value_beyond_int32_is_read_as_int64_exactly(busy_tree, tmp_path):
    """The scan's cast fails on a value that does not fit; the file-by-file read keeps that column int64
    (the others still narrow)."""
    import shutil

    root = tmp_path / "results"
    shutil.copytree(busy_tree, root)
    path = sorted(root.rglob("layers-*syn1-*.parquet"))[0]  # the latest run: its rows win
    t = pq.read_table(path)
    big = pa.array([2**40] * t.num_rows, pa.int64())
    pq.write_table(t.set_column(t.schema.get_field_index("in_h"), "in_h", big), path)
    layers = load(root).layers
    assert layers["in_h"].dtype == np.int64 and (layers["in_h"] == 2**40).sum() == t.num_rows
    assert layers["in_channels"].dtype == np.int32
