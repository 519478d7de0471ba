"""analysis.tree.widths: the layers' small integers held as int8 or int16 by the analysis's own run change no
value, no table, no report line and no predictor figure, and every table holds them as int32 again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from analysis import pipeline
from analysis.options import Options
from analysis.tree import load, widths
from harness.results.schema import CONV_PARAMETERS
from tests.synthetic import Synthetic, default_models, generate


def test_each_small_integer_takes_the_narrowest_type_that_holds_it():
    frame = pd.DataFrame(
        {
            "kernel_h": np.array([-128, 127], np.int32),  # int8's bounds
            "in_channels": np.array([0, 128], np.int32),  # one past int8
            "out_channels": np.array([-32768, 32767], np.int64),  # int16's bounds
            "in_h": np.array([0, 32768], np.int32),  # one past int16: stays
            "groups": [1.0, np.nan],  # nulls: floats, not narrowed
            "n": np.array([1, 2], np.int32),  # not a small integer
        }
    )
    widths.narrow(frame)
    assert frame.dtypes.astype(str).to_dict() == {
        "kernel_h": "int8",
        "in_channels": "int16",
        "out_channels": "int16",
        "in_h": "int32",
        "groups": "float64",
        "n": "int32",
    }
    assert frame["out_channels"].tolist() == [-32768, 32767] and frame["kernel_h"].tolist() == [-128, 127]
    wide = widths.as_int32(frame.assign(other=np.array([1, 2], np.int8)))
    assert wide.dtypes.astype(str).to_dict() == {
        "kernel_h": "int32",
        "in_channels": "int32",
        "out_channels": "int32",
        "in_h": "int32",
        "groups": "float64",
        "n": "int32",
        "other": "int8",  # a table's own small integer is its own business
    }
    empty = pd.DataFrame({"kernel_h": np.array([], np.int32)})
    assert widths.narrow(empty)["kernel_h"].dtype == np.int32


@pytest.fixture(scope="module")
def wide_channels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A campaign whose layers have hundreds of channels: in_channels * out_channels wraps in int16, so any
    arithmetic the analysis did on narrowed columns would show in its answers."""
    root = tmp_path_factory.mktemp("widths") / "results"
    generate(
        root,
        Synthetic(
            models=default_models(n_models=2, n_layers=12, seed=5),
            gpus=("h100",),
            algos=("torch", "guess", "implicit_gemm", "winograd", "fft"),
            sizes=(32, 64, 96),
            batch_sizes=(1, 8),
            fallback={"winograd": "torch"},
            power_w={"h100": 300.0},
            noise=0.05,
            repeats=2,
            seed=2,
        ),
    )
    return root


def test_a_narrowed_load_holds_the_same_values(wide_channels):
    narrow, whole = load(wide_channels, narrow=True), load(wide_channels)
    channels = whole.layers[["in_channels", "out_channels"]].astype(np.int64)
    assert (channels["in_channels"] * channels["out_channels"]).max() > np.iinfo(np.int16).max
    narrowed = {c for c in widths.SMALL if c in narrow.layers and narrow.layers[c].dtype.itemsize < 4}
    assert {"input_size", "batch_size", "layer_index", *CONV_PARAMETERS, "in_h", "in_w"} <= narrowed
    assert narrow.layers.memory_usage(index=False).sum() < whole.layers.memory_usage(index=False).sum()
    pd.testing.assert_frame_equal(widths.as_int32(narrow.layers), whole.layers)
    pd.testing.assert_frame_equal(narrow.points, whole.points)


def test_the_analysis_answers_alike_from_narrowed_and_int32_layers(wide_channels, tmp_path, monkeypatch):
    """python -m analysis narrows; the same run on int32 layers gives the same tables (int32 where the layers'
    integers are), the same files, the same report and the same predictor."""
    options = Options(plots=True, predictor=True)
    narrowed = pipeline.run(wide_channels, tmp_path / "narrow", options)
    monkeypatch.setattr(widths, "narrow", lambda layers: layers)
    int32 = pipeline.run(wide_channels, tmp_path / "int32", options)
    assert narrowed.tables.keys() == int32.tables.keys()
    for name, table in int32.tables.items():
        pd.testing.assert_frame_equal(narrowed.tables[name], table, obj=name)
    assert any(table[c].dtype == np.int32 for table in int32.tables.values() for c in widths.SMALL if c in table)
    written = sorted(p.relative_to(int32.out) for p in int32.out.rglob("*.parquet"))
    assert written == sorted(p.relative_to(narrowed.out) for p in narrowed.out.rglob("*.parquet"))
    assert any("predictor_latency" in str(p) for p in written) and any("training" in str(p) for p in written)
    for rel in written:  # the predictor's tables and files too, written from frames of narrowed layers
        assert pq.read_schema(narrowed.out / rel) == pq.read_schema(int32.out / rel), rel
        pd.testing.assert_frame_equal(pd.read_parquet(narrowed.out / rel), pd.read_parquet(int32.out / rel))
    pd.testing.assert_frame_equal(narrowed.predictor_metrics, int32.predictor_metrics)
    assert narrowed.figures.keys() == int32.figures.keys() and narrowed.figures
    text = [o.report_md.read_text().replace(str(o.out), "OUT") for o in (narrowed, int32)]
    assert text[0] == text[1]
