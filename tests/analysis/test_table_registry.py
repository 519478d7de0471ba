"""The table registry (analysis/tables/registry.py): every answer table is one record found in the catalog,
computed through one path; a table registered from outside is computed through that same path."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import pipeline
from analysis.tables import registry
from analysis.tables.registry import SOURCES, Table


def test_every_table_has_a_unique_name_and_declared_inputs_that_exist():
    tables = registry.tables()
    names = [t.name for t in tables]
    assert len(names) == len(set(names)) == 19
    for t in tables:
        assert t.inputs, t.name
        assert set(t.inputs) <= set(SOURCES) | set(names), t.name
        assert t.about, t.name


def test_the_registry_computes_what_the_pipeline_computes(res):
    got = registry.compute_all(res.points, res.layers, workers=2)
    want = pipeline.compute_tables(res)
    assert list(got) == list(want)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)


def test_a_toy_table_registered_in_a_test_is_produced_through_the_same_path(res):
    def ok_algorithms(points: pd.DataFrame, algorithms: pd.DataFrame) -> pd.DataFrame:
        counted = algorithms[algorithms["p50_ms"].notna()].groupby("gpu", observed=True).size()
        return counted.rename("ok").reset_index().assign(points=len(points))

    toy = Table("toy_ok_algorithms", ("points", "algorithms"), ok_algorithms, position=85, about="a toy")
    registry.register(toy)
    try:
        with pytest.raises(ValueError, match="already registered"):
            registry.register(toy)
        frames = registry.compute_all(res.points, res.layers)
        names = list(frames)
        assert names.index("toy_ok_algorithms") == names.index("algorithms") + 1  # position 85: after 80
        expected = frames["algorithms"].loc[frames["algorithms"]["p50_ms"].notna(), "gpu"].value_counts()
        got = frames["toy_ok_algorithms"].set_index("gpu")["ok"]
        assert got.sort_index().tolist() == expected.sort_index().tolist()
        assert (frames["toy_ok_algorithms"]["points"] == len(res.points)).all()
    finally:
        registry.unregister("toy_ok_algorithms")
    assert "toy_ok_algorithms" not in [t.name for t in registry.tables()]


def test_a_table_without_inputs_or_waiting_on_a_missing_one_is_an_error(res):
    with pytest.raises(ValueError, match="declares no inputs"):
        registry.register(Table("nothing_in", (), lambda: pd.DataFrame(), position=1))
    registry.register(Table("orphan", ("no_such_table",), lambda x: x, position=1))
    try:
        with pytest.raises(ValueError, match="no_such_table"):
            registry.compute_all(res.points, res.layers)
    finally:
        registry.unregister("orphan")
