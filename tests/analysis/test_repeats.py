"""Pooling the repeats of a point (separate processes) into one row, the between-process variance per
model on a GPU type, borrowing it for points measured once, and what the Methods paragraph says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.repeats import methods_sentences, pool
from harness.results.uncertainty import Z95, between_process, log_se, pooled_se

KEY = ["gpu", "model", "input_size"]


def _row(gpu: str, size: int, repeat: int, p50: float, half: float = 0.01, run: str = "r") -> dict:
    return {
        "gpu": gpu,
        "model": "m",
        "input_size": size,
        "repeat": repeat,
        "status": "ok",
        "p50_ms": p50,
        "ci95_low_ms": p50 * np.exp(-half),
        "ci95_high_ms": p50 * np.exp(half),
        "n": 20,
        "run_id": f"{run}{repeat}",
        "measured_at": pd.Timestamp("2026-12-01", tz="UTC") + pd.Timedelta(minutes=repeat),
    }


def test_repeats_pool_into_one_row_with_the_between_process_variance():
    offsets = {0: 1.00, 1: 1.06, 2: 0.96}  # processes 6% apart: far beyond each one's 1% interval
    rows = [_row("a", s, r, 2.0 * s / 100 * f) for s in (100, 200, 300) for r, f in offsets.items()]
    rows += [_row("a", 400, 0, 8.0)]  # measured once on the same GPU type: borrows
    rows += [_row("b", 100, 0, 3.0)]  # another GPU type without repeats: unchanged
    frame = pd.DataFrame(rows)
    out = pool(frame, KEY, "points")
    p = out.rows.set_index(["gpu", "input_size"])
    assert len(out.rows) == 5 and p.loc[("a", 100), "processes"] == 3
    assert p.loc[("a", 100), "p50_ms"] == pytest.approx(2.0 * np.exp(np.mean(np.log(list(offsets.values())))))
    on_a = frame[frame["gpu"] == "a"]
    b = between_process(np.log(on_a["p50_ms"]), log_se(on_a), on_a["input_size"])
    assert b.df == 6 and b.share > 0.9
    half = np.log(p.loc[("a", 100), "ci95_high_ms"] / p.loc[("a", 100), "p50_ms"])
    assert half == pytest.approx(Z95 * pooled_se(0.01 / Z95, 3, b), rel=1e-6)
    assert p.loc[("a", 400), "between_process"] == "borrowed" and p.loc[("a", 400), "p50_ms"] == 8.0
    assert np.log(p.loc[("a", 400), "ci95_high_ms"] / 8.0) > 3 * 0.01  # widened by the between-process noise
    assert p.loc[("b", 100), "between_process"] == "within only"
    assert p.loc[("b", 100), "ci95_high_ms"] == pytest.approx(3.0 * np.exp(0.01))  # as measured
    line = out.between.set_index("gpu").loc["a"]
    assert line["points_repeated"] == 3 and line["max_processes"] == 3 and line["between_share"] > 0.9
    text = " ".join(methods_sentences(out.between, out.rows))
    assert "1 to 3 separate processes" in text and "a m: between-process sd" in text  # 400 px: one process
    assert "1 points measured in one process borrow" in text and "1 points (on GPU types without repeats)" in text


def test_a_tree_without_repeats_is_left_as_it_is():
    frame = pd.DataFrame([_row("a", 100, 0, 2.0), _row("a", 200, 0, 3.0)])
    out = pool(frame, KEY, "points")
    pd.testing.assert_frame_equal(out.rows[frame.columns], frame)
    assert set(out.rows["between_process"]) == {"within only"} and out.between.empty
    assert "one process" in methods_sentences(out.between, out.rows)[0]


def test_a_failed_repeat_is_not_pooled():
    frame = pd.DataFrame(
        [
            _row("a", 100, 0, 2.0),
            _row("a", 100, 1, 2.2) | {"status": "error", "p50_ms": np.nan},
            _row("a", 200, 0, 3.0),
            _row("a", 200, 1, 3.3),
        ]
    )
    p = pool(frame, KEY, "points").rows.set_index("input_size")
    assert p.loc[100, "processes"] == 1 and p.loc[100, "p50_ms"] == pytest.approx(2.0)
    assert p.loc[200, "processes"] == 2 and p.loc[200, "p50_ms"] == pytest.approx(np.sqrt(3.0 * 3.3))


def test_host_bound_repeats_join_no_pool():
    """A layer time the head start did not cover is the host's: it is left out of the pool, and the pooled
    layer is host-bound only where every repeat was."""
    key = ["gpu", "model", "input_size", "layer_index"]
    rows = []
    for layer, bound in ((0, (True, False, False)), (1, (True, True, True))):
        for r, (hb, p50) in enumerate(zip(bound, (9.0, 1.0, 1.02))):
            rows.append(_row("a", 100, r, p50) | {"layer_index": layer, "host_bound": hb})
    out = pool(pd.DataFrame(rows), key, "layers").rows.set_index("layer_index")
    assert out.loc[0, "host_bound"] == False and out.loc[0, "processes"] == 2  # noqa: E712
    assert out.loc[0, "p50_ms"] == pytest.approx(np.sqrt(1.0 * 1.02))  # the host-bound 9 ms left out
    assert out.loc[1, "host_bound"] == True  # noqa: E712
