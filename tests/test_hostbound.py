"""The rules of harness.results.hostbound: the column read back (old rows from their detail), and the mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from harness.results.hostbound import HOST_BOUND, derive, gpu_timed, mask


def test_a_row_with_the_column_keeps_it_and_an_old_row_is_read_from_its_detail():
    host_bound = pa.array([True, False, None, None, None, None, False], pa.bool_())
    detail = pa.array(
        [None, HOST_BOUND, HOST_BOUND, f"CUDNN_STATUS_NOT_SUPPORTED; {HOST_BOUND}", "find: gemm 0.1 ms", None, None]
    )
    # the column wins where it is set; an old row: true where its detail says so, else unknown (null)
    assert derive(host_bound, detail).to_pylist() == [True, False, True, True, None, None, False]


def test_derive_takes_the_chunked_columns_of_a_table():
    t = pa.table(
        {
            "host_bound": pa.chunked_array([[None], [None]], pa.bool_()),
            "detail": pa.chunked_array([[HOST_BOUND], ["other"]]),
        }
    )
    assert derive(t.column("host_bound"), t.column("detail")).to_pylist() == [True, None]


def test_mask_is_true_only_where_known_host_bound():
    layers = pd.DataFrame({"host_bound": [True, None, False], "p50_ms": [1.0, 2.0, 3.0]})
    assert mask(layers).tolist() == [True, False, False]
    assert mask(layers.astype({"host_bound": "boolean"})).tolist() == [True, False, False]
    assert mask(layers.drop(columns="host_bound")).tolist() == [False, False, False]  # a frame without it
    assert gpu_timed(layers)["p50_ms"].tolist() == [2.0, 3.0]
    clean = layers.assign(host_bound=False)
    assert gpu_timed(clean) is clean and np.array_equal(mask(clean), [False] * 3)
