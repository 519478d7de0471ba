"""The table registry (analysis/tables/registry.py): every answer table is one record found in the catalog,
computed through one path; a table registered from outside is computed through that same path."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis import pipeline
from analysis.tables import registry
from analysis.tables.catalog.kernel_families import kernel_families
from analysis.tables.catalog.regimes import regimes
from analysis.tables.registry import SOURCES, Table


def test_every_table_has_a_unique_name_and_declared_inputs_that_exist():
    tables = registry.tables()
    names = [t.name for t in tables]
    assert len(names) == len(set(names)) == 24
    for t in tables:
        assert t.inputs, t.name
        assert set(t.inputs) <= set(SOURCES) | set(names), t.name
        assert t.about, t.name


def hand_wired(res) -> dict[str, pd.DataFrame]:
    """The tables as the pipeline computed them before the registry: each function called on its inputs by
    hand, in the report's order. The registry's wiring (inputs, order) must give the same frames."""
    from analysis import answer, perlayer, tables
    from analysis.tables import training
    from analysis.tables.catalog.training_projection import training_projection
    from analysis.tree import directions

    algos = tables.algorithms(res.points)
    comp = answer.competitors(res.points)
    sp = answer.speedups(comp)
    speedup_summary = answer.speedup_summary(sp)
    wins = answer.winners(comp)
    layer_sp = answer.layer_speedups(res.layers)
    oracle = tables.oracle(perlayer.singles(res.points), perlayer.singles(res.layers))
    proj = perlayer.projection(res.points, res.layers, oracle)
    train_points, train_layers = directions.training_points(res.points), directions.training_layers(res.layers)
    train_oracle = training.oracle(train_points, train_layers)
    return {
        "summary": answer.headline(speedup_summary, wins),
        "competitors": comp,
        "speedups": sp,
        "speedup_summary": speedup_summary,
        "winners": wins,
        "layer_speedups": layer_sp,
        "layer_speedup_summary": answer.layer_summary(layer_sp),
        "algorithms": algos,
        "best": tables.best(algos),
        "regimes": regimes(algos),
        "edp": tables.edp(algos),
        "gpus": tables.gpu_pairs(algos),
        "layer_shapes": tables.layer_shapes(res.layers),
        "support": tables.support(res.layers),
        "kernel_families": kernel_families(res.layers),
        "oracle": oracle,
        "plan_comparison": perlayer.plan_vs_others(res.points, None),
        "plan_projection": proj,
        "plan_bias": perlayer.projection_bias(proj),
        "coverage": tables.coverage(res.points),
        "failures": tables.failures(res.points),
        "training_layers": training.best_per_layer(train_layers),
        "training_oracle": train_oracle,
        "training_projection": training_projection(train_points, train_layers, train_oracle),
    }


@pytest.mark.parametrize("workers", [1, 2])
def test_the_registry_computes_what_the_functions_compute_by_hand(res, workers):
    got = registry.compute_all(res.points, res.layers, workers=workers)
    want = hand_wired(res)
    assert list(got) == list(want)
    for name in want:
        pd.testing.assert_frame_equal(got[name], want[name], obj=name)
    assert list(pipeline.compute_tables(res)) == list(want)  # the pipeline computes through the registry


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
