"""What makes the analysis fit a campaign's scale (benchmarks/analysis_scale.py) changes no answer: the layers'
integers read as int32, the tables over them computed as before, on trees with noise, repeats, fallbacks and
several batch sizes."""

from __future__ import annotations

import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from analysis import pipeline
from analysis.stats.verdicts import VERDICTS, corrected
from analysis.tables.catalog.layer_speedups import layer_speedups
from analysis.tables.columns import POINT
from analysis.tree import gather, load, loader, read
from analysis.tree.keys import layer_keys
from harness.results import hostbound
from harness.results.uncertainty import log_se, ratio_interval
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
        m.setattr(gather, "INT32", {})
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
    root = tmp_path / "results"
    shutil.copytree(busy_tree, root)
    path = sorted(root.rglob("layers-*syn1-*.parquet"))[0]  # the latest run: its rows win
    _rewrite(path, "in_h", lambda rows: pa.array([2**40] * len(rows), pa.int64()))
    layers = load(root).layers
    assert layers["in_h"].dtype == np.int64 and (layers["in_h"] == 2**40).sum() == pq.read_metadata(path).num_rows
    assert layers["in_channels"].dtype == np.int32


def layer_speedups_before(layers: pd.DataFrame, reference: str = "guess") -> pd.DataFrame:
    """The table as computed before (commit 3d36706), the reference of the comparison."""
    key = [*POINT, "layer_index"]
    cols = [
        c
        for c in (*key, "algo", "layer_name", "p50_ms", "ci95_low_ms", "ci95_high_ms", "std_ms", "n")
        if c in layers.columns
    ]
    timed = layers.loc[layers["p50_ms"].notna() & (layers["p50_ms"] > 0) & ~hostbound.mask(layers), cols]
    se = log_se(timed).to_numpy(dtype=float)
    is_ref = (timed["algo"] == reference).to_numpy()
    (layer,) = layer_keys([timed], POINT)  # the point's layer as one integer: millions of rows join on it
    refs, others = np.flatnonzero(is_ref), np.flatnonzero(~is_ref)
    ref_of = pd.Index(layer[refs])
    if not ref_of.is_unique:  # a layer the reference timed twice: every pairing, as a merge gives
        ref = timed.iloc[refs][key].assign(ref_p50_ms=timed["p50_ms"].to_numpy()[refs], ref_log_se=se[refs])
        m = timed.iloc[others].assign(log_se=se[others]).merge(ref, on=key)
        mine, ref_p50, ref_se = m["log_se"].to_numpy(), m["ref_p50_ms"].to_numpy(), m["ref_log_se"].to_numpy()
        out = m.drop(
            columns=[c for c in ("ci95_low_ms", "ci95_high_ms", "std_ms", "n", "log_se", "ref_log_se") if c in m]
        )
    else:
        pos = ref_of.get_indexer(layer[others])
        keep = others[pos >= 0]
        pos = refs[pos[pos >= 0]]
        p50 = timed["p50_ms"].to_numpy(dtype=float)
        mine, ref_p50, ref_se = se[keep], p50[pos], se[pos]
        out = (
            timed.iloc[keep]
            .drop(columns=[c for c in ("ci95_low_ms", "ci95_high_ms", "std_ms", "n") if c in timed])
            .reset_index(drop=True)
        )
        out["ref_p50_ms"] = ref_p50
    s = ratio_interval(ref_p50, ref_se, out["p50_ms"].to_numpy(dtype=float), mine)
    p, q, code = corrected(s.ratio, s.log_se)
    # a row per layer (millions): the two labels as categoricals, not a string each
    n = len(out)
    return out.assign(
        reference=pd.Categorical.from_codes(np.zeros(n, np.int8), [reference]),
        speedup=s.ratio,
        speedup_low=s.low,
        speedup_high=s.high,
        p_value=p,
        q_value=q,
        verdict=pd.Categorical.from_codes(code, list(VERDICTS)),
    )


@pytest.mark.parametrize("chunk", [1_000_000, 997])
def test_layer_speedups_are_the_table_computed_before(busy_tree, chunk, monkeypatch):
    """The same frame (values, dtypes, order) as the implementation it replaced, on a tree and on the same
    layers with the reference's rows twice (every pairing: the merge), in one slice or several."""
    from analysis.tables.catalog import layer_speedups as module

    monkeypatch.setattr(module, "CHUNK", chunk)
    layers = load(busy_tree).layers
    layers.loc[layers.index[::7], "host_bound"] = True
    layers.loc[layers.index[::11], "p50_ms"] = np.nan
    twice = pd.concat([layers, layers[layers["algo"] == "guess"]], ignore_index=True)
    for frame in (layers, twice):
        after = layer_speedups(frame)
        assert len(after) > 100 and after["verdict"].nunique() > 1
        pd.testing.assert_frame_equal(after, layer_speedups_before(frame))


def test_one_family_of_millions_is_corrected_as_by_the_grouped_path():
    """benjamini_hochberg's one-family path (one sort, no grouping) gives the grouped path's q-values exactly,
    ties and untested entries included; student_sf's in-place series its values exactly."""
    from harness.results import multiplicity as mt

    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 20_000) ** 3
    p[rng.integers(0, len(p), 2_000)] = np.nan
    p[::13] = p[5]  # ties
    one = mt.benjamini_hochberg(p)
    grouped = mt.benjamini_hochberg(p, groups=np.zeros(len(p), np.int64))  # one family, the general path
    np.testing.assert_array_equal(one, grouped)
    assert np.isnan(one).sum() == np.isnan(p).sum() and (one < 0.05).any() and (one > 0.5).any()
    t = np.r_[rng.normal(0, 3, 1_000), np.inf, -np.inf, np.nan, 0.0]
    term, total = np.ones_like(t), np.ones_like(t)
    c2 = np.cos(np.arctan(np.abs(np.where(np.isinf(t), 0.0, t)) / np.sqrt(mt.TAIL_DF))) ** 2
    for j in range(1, mt.TAIL_DF // 2):  # the series as written before, a new array per step
        term = term * c2 * (2 * j - 1) / (2 * j)
        total = total + term
    a = np.arctan(np.abs(np.where(np.isinf(t), 0.0, t)) / np.sqrt(mt.TAIL_DF))
    upper = np.maximum((1.0 - np.sin(a) * total) / 2, 0.0)  # and floored at 0 since (rounding made -1e-16)
    before = np.where(np.isposinf(t), 0.0, np.where(np.isneginf(t), 1.0, np.where(t >= 0, upper, 1.0 - upper)))
    np.testing.assert_array_equal(mt.student_sf(t), before)


def test_the_tables_over_the_layers_run_two_at_a_time(busy_tree):
    """Three tables reading the layers, with three workers: two of them overlap, never three (their
    intermediates at tens of millions of rows would add up). Each waits up to a second for all three to be in:
    an overlap the gate allows happens; one it does not would be seen."""
    import threading

    from analysis.tables import registry
    from analysis.tables.registry import Table

    changed, running, most = threading.Condition(), set(), [0]

    def toy(me: str):
        def compute(layers: pd.DataFrame) -> pd.DataFrame:
            with changed:
                running.add(me)
                most[0] = max(most[0], len(running))
                changed.notify_all()
                changed.wait_for(lambda: len(running) == 3, timeout=1.0)
                running.discard(me)
            return pd.DataFrame({"rows": [len(layers)]})

        return compute

    res = load(busy_tree)
    names = ["toy_layers_a", "toy_layers_b", "toy_layers_c"]
    for name in names:
        registry.register(Table(name, ("layers",), toy(name), position=-1, about="a toy"))
    try:
        frames = registry.compute_all(res.points, res.layers, workers=3)
    finally:
        for name in names:
            registry.unregister(name)
    assert frames["toy_layers_a"]["rows"].tolist() == [len(res.layers)]
    assert most[0] == 2  # two together, never three


def test_a_table_of_a_row_per_layer_row_or_read_from_one_holds_the_gate_alone():
    """The gate the layers' tables pass: a second table enters beside one, a third does not; a table of a row
    per layer row (or one computed from it) enters only where no other is in, and none enters beside it."""
    import threading

    from analysis.tables import registry

    gate = registry._Gate()
    waiting: list[threading.Thread] = []

    def enters(alone: bool) -> bool:  # whether a table enters now (a blocked one enters once the gate frees)
        entered = threading.Event()

        def table() -> None:
            with gate.held(alone):
                entered.set()

        waiting.append(threading.Thread(target=table, daemon=True))
        waiting[-1].start()
        return entered.wait(timeout=0.3)

    with gate.held(alone=False):
        assert enters(alone=False) and not enters(alone=True)
        with gate.held(alone=False):
            assert not enters(alone=False)
    for t in waiting:
        t.join(timeout=10)
        assert not t.is_alive()  # the blocked ones entered once the gate was free
    with gate.held(alone=True):
        assert not enters(alone=False) and not enters(alone=True)
    for t in waiting:
        t.join(timeout=10)
    alone = {t.name for t in registry.tables() if registry._alone(t)}
    assert alone == {"layer_speedups", "layer_speedup_summary"}


def test_a_table_of_a_row_per_layer_row_runs_alone_and_after_the_others_ready_with_it(busy_tree):
    """layer_speedups (14,000,000 rows at a campaign's scale) starts after every other table whose inputs are
    ready when it is, so that their intermediates come and go before its rows are held; the tables computed from
    it run one at a time with the layers' tables; the tables come back in their order all the same."""
    from analysis.tables import registry

    res = load(busy_tree)
    started: list[str] = []

    @contextmanager
    def step(name: str):
        started.append(name)
        yield

    frames = registry.compute_all(res.points, res.layers, workers=1, step=step)
    assert list(frames) == [t.name for t in registry.tables()]
    first_wave = [t.name for t in registry._waves(registry.tables())[0]]
    assert "layer_speedups" in first_wave and len(first_wave) > 1
    assert started.index("layer_speedups") == len(first_wave) - 1
    summary = registry.get("layer_speedup_summary")
    assert registry.get("layer_speedups").per_layer_row and registry.over_layer_rows(summary)
    assert not registry.over_layer_rows(registry.get("speedup_summary"))
    from analysis.report.frames import PARQUET_ONLY  # written without a CSV: a row per layer row

    assert {t.name for t in registry.tables() if t.per_layer_row} == PARQUET_ONLY


def test_handing_back_also_asks_arrows_default_allocator_for_what_it_keeps(monkeypatch):
    """The Parquet files' tables are read through Arrow's default allocator (mimalloc), which keeps memory
    freed to it: 0.19 GB after loading 20,000,000 layer rows, until asked."""
    import pyarrow as pa

    from analysis import memory

    asked = []
    monkeypatch.setattr(pa, "default_memory_pool", lambda: SimpleNamespace(release_unused=lambda: asked.append(1)))
    memory.give_back()
    assert asked == [1]


def test_freed_memory_is_handed_back_after_the_load_and_each_table(busy_tree, monkeypatch):
    """The heap is trimmed after each table is read, once the load is done and after every table (whatever it
    raised): the next large step starts from what is really held."""
    import platform

    from analysis import memory
    from analysis.tables import registry

    if platform.libc_ver()[0] == "glibc":
        assert memory.give_back() is True  # glibc's malloc_trim found and called
    calls: list[str] = []
    monkeypatch.setattr(memory, "give_back", lambda: calls.append("trim") or True)
    res = load(busy_tree)
    assert calls == ["trim"] * 4  # after reading the points, after converting them, after the layers, once loaded
    calls.clear()
    # the registry's own trims (a table may trim within itself too: layer_speedups, between its large arrays)
    monkeypatch.setattr(memory, "give_back", lambda: True)
    monkeypatch.setattr(registry, "memory", SimpleNamespace(give_back=lambda: calls.append("trim") or True))
    registry.compute_all(res.points, res.layers, workers=2)
    assert len(calls) == len(registry.tables())

    def fails(layers: pd.DataFrame) -> pd.DataFrame:
        raise RuntimeError("a table that fails")

    @contextmanager
    def step(name: str):
        calls.append(f"start {name}")
        yield

    calls.clear()
    registry.register(registry.Table("toy_failing", ("layers",), fails, position=1, about="a toy"))
    try:
        with pytest.raises(RuntimeError, match="a table that fails"):
            registry.compute_all(res.points, res.layers, step=step)
    finally:
        registry.unregister("toy_failing")
    after = calls[calls.index("start toy_failing") + 1 :]  # one table at a time: what happened until the next
    assert after[0] == "trim"  # trimmed although the table raised


def test_the_tables_computed_one_model_at_a_time_are_the_tables_computed_whole(busy_tree, monkeypatch):
    """analysis.tables.slices: the load gives each (stage, gpu, model)'s layer rows together, the tables read
    them slice by slice, and every table is the one computed over all rows at once (values, types, order)."""
    from analysis.tables import slices

    res = load(busy_tree)
    spans = slices.ranges(res.layers)
    assert len(spans) == 6 and spans[0][0] == 0 and spans[-1][1] == len(res.layers)  # 3 models x 2 GPUs
    for (_, stop), (start, _) in zip(spans, spans[1:]):
        assert stop == start
    sliced = pipeline.compute_tables(res)
    monkeypatch.setattr(slices, "ranges", lambda layers: [(0, len(layers))])
    whole = pipeline.compute_tables(res)
    assert len(sliced["oracle"]) and len(sliced["layer_speedups"])
    for name in whole:
        pd.testing.assert_frame_equal(sliced[name], whole[name], obj=name)


def test_rows_of_a_model_apart_are_one_slice(busy_tree):
    from analysis.tables import slices

    layers = load(busy_tree).layers
    assert slices.ranges(layers.sample(frac=1, random_state=0)) == [(0, len(layers))]
    one = layers[(layers["model"] == layers["model"].iloc[0]) & (layers["gpu"] == layers["gpu"].iloc[0])]
    assert slices.ranges(one) == [(0, len(one))] and slices.ranges(layers.iloc[:0]) == [(0, 0)]


def test_all_distinct_is_pandas_is_unique():
    from analysis.tree.keys import all_distinct

    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**40, 10_000)
    assert all_distinct(keys) == pd.Index(keys).is_unique
    assert not all_distinct(np.r_[keys, keys[17]]) and all_distinct(keys[:1]) and all_distinct(keys[:0])


@pytest.mark.parametrize("seed", range(40))
def test_all_distinct_of_keys_in_runs_is_pandas_is_unique(seed):
    """Keys as a run writes them (ascending runs: a point's layers in order), the runs apart or overlapping,
    with or without a key repeated within reach of another run, at run ends, or two runs equal: all_distinct
    answers as pandas does."""
    from analysis.tree.keys import all_distinct

    rng = np.random.default_rng(seed)
    runs = []
    for start in rng.permutation(int(rng.integers(1, 60))) * int(rng.integers(1, 40)):
        runs.append(start + np.cumsum(rng.integers(1, 4, int(rng.integers(1, 30)))))
    if seed % 4 == 1:
        runs.append(runs[int(rng.integers(len(runs)))].copy())  # a whole run twice (a file read twice)
    elif seed % 4 == 2:
        donor = runs[int(rng.integers(len(runs)))]
        runs.insert(int(rng.integers(len(runs) + 1)), donor[[int(rng.integers(len(donor)))]])  # one key again
    elif seed % 4 == 3:
        runs.append(np.array([runs[-1][-1]]))  # the last key again, right after it (where a run ends)
    keys = np.concatenate(runs).astype(np.int64)
    assert all_distinct(keys) == pd.Index(keys).is_unique
    assert all_distinct(keys[::-1]) == pd.Index(keys).is_unique  # descending: every key a run of its own


def support_before(layers: pd.DataFrame) -> pd.DataFrame:
    """The support table as computed before it was counted one model at a time (commit 5811b61), but for its
    status as text: on the loaded (categorical) statuses, a mixed shape raised TypeError there."""
    from analysis.tables.columns import SUPPORT, shape_label
    from analysis.tree.keys import row_keys

    rows = layers[[*SUPPORT, "algo", "status"]]
    rows = rows.assign(_shape=row_keys([rows], SUPPORT)[0])
    g = rows.groupby(["_shape", "algo"], observed=True, sort=False)["status"]
    out = g.agg(status="first", kinds="nunique", rows="size").reset_index()
    out = out.merge(rows.drop_duplicates("_shape")[["_shape", *SUPPORT]], on="_shape").drop(columns="_shape")
    out = out[[*SUPPORT, "algo", "status", "kinds", "rows"]]
    out["status"] = out["status"].astype(object).where(out.pop("kinds") == 1, "mixed")
    out.insert(len(SUPPORT), "shape", shape_label(out))
    return out.sort_values([*SUPPORT, "algo"]).reset_index(drop=True)


def test_support_counted_per_model_is_the_table_counted_whole(busy_tree):
    """Statuses that disagree within a slice and between slices (mixed: the loaded statuses are categoricals,
    where "mixed" raised TypeError before), and rows without a status."""
    from analysis.tables.catalog.support import support

    layers = load(busy_tree).layers
    layers.loc[layers.index[::5], "status"] = "fallback"
    layers.loc[layers.index[3::17], "status"] = np.nan
    after = support(layers)
    assert set(after["status"]) >= {"ok", "mixed"} and len(after) > 100
    pd.testing.assert_frame_equal(after, support_before(layers))


def test_support_keeps_rows_without_an_algorithm_apart(busy_tree):
    """Layer rows without their algorithm are counted per shape in rows of their own (as before the table was
    counted on integers); every other row is what the table counted whole gives."""
    from analysis.tables.catalog.support import support

    layers = load(busy_tree).layers
    layers.loc[layers.index[::23], "algo"] = np.nan
    after = support(layers)
    unnamed = after["algo"].isna()
    assert unnamed.any() and after.loc[unnamed, "rows"].sum() == layers["algo"].isna().sum()
    pd.testing.assert_frame_equal(after[~unnamed].reset_index(drop=True), support_before(layers))


@pytest.mark.parametrize("scratch", [7, 1 << 20])
def test_mixed_radix_keys_are_equal_exactly_where_the_rows_are(scratch, monkeypatch):
    """Categoricals with missing values and different categories per frame, narrow and wide integers, and
    columns whose ranges overflow 62 bits (the keys so far renumbered); added a slice of ``scratch`` rows at a
    time (7: slices that end mid-frame)."""
    from analysis.tree import keys as keys_module
    from analysis.tree.keys import mixed_radix

    monkeypatch.setattr(keys_module, "SCRATCH", scratch)

    rng = np.random.default_rng(5)

    def frame(n: int, cats: list[str]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "c": pd.Categorical.from_codes(rng.integers(-1, len(cats), n).astype(np.int8), cats),
                "i8": rng.integers(-3, 3, n).astype(np.int8),
                "wide": rng.choice([0, 2**40, -(2**40)], n),
                "big": rng.choice([0, 2**50], n).astype(np.int64),
                "u": rng.integers(0, 4, n).astype(np.uint16),
            }
        )

    frames = [frame(3000, ["a", "b", "c"]), frame(2000, ["b", "c", "d"])]
    keys = mixed_radix(frames, list(frames[0].columns))
    assert keys is not None
    both = pd.concat([f.astype({"c": object}) for f in frames], ignore_index=True)
    groups = both.groupby(list(both.columns), dropna=False).ngroup().to_numpy()
    key = np.concatenate(keys)
    assert len(np.unique(key)) == len(np.unique(groups)) == len(np.unique(np.c_[key, groups], axis=0))
    (alone,) = mixed_radix(frames[:1], list(frames[0].columns))  # one frame: renumbered without a copy
    ngroups = frames[0].astype({"c": object}).groupby(list(frames[0].columns), dropna=False).ngroup().to_numpy()
    assert len(np.unique(alone)) == len(np.unique(ngroups)) == len(np.unique(np.c_[alone, ngroups], axis=0))
    assert mixed_radix([frames[0].assign(i8=frames[0]["i8"].astype(float))], ["i8"]) is None


def test_a_run_without_figures_or_predictor_reads_fewer_layer_columns_and_answers_the_same(
    busy_tree, tmp_path, monkeypatch
):
    """analysis.tree.read.unneeded_layer_columns: the columns only the figures or the predictor read are left
    unread by a run that makes neither, those only the load reads are dropped once it is done, and every table
    and the report are those of a run that kept them all."""
    from analysis.options import Options

    unneeded = read.unneeded_layer_columns(plots=False, predictor=False)
    assert set(unneeded) == set(read.FOR_PREDICTOR) | set(read.FOR_FIGURES) | set(read.FOR_LOAD_ONLY)
    assert read.unneeded_layer_columns(plots=True, predictor=False) == (
        "share_of_model",
        "out_h",
        "out_w",
        "algo_requested",
        *read.FOR_LOAD_ONLY,
    )
    assert read.unneeded_layer_columns(plots=True, predictor=True) == read.FOR_LOAD_ONLY
    # the busy tree with layer rows holding a mean and no median (as imported rows do), and one algorithm's files
    # of a model from another model of the same name (another model_hash) measured as a second repeat: the load's
    # work with the columns a run drops
    tree = tmp_path / "results"
    shutil.copytree(busy_tree, tree)
    first = sorted(tree.rglob("layers-*.parquet"))[0]
    _rewrite(first, "p50_ms", lambda rows: pc.if_else(np.arange(len(rows)) % 3 == 0, None, rows["p50_ms"]))
    for table in first.parent.glob("*.parquet"):  # the points and layers files of that model and algorithm
        _rewrite(table, "model_hash", lambda rows: pa.array(["ab" * 32] * len(rows), pa.string()))
        _rewrite(table, "repeat", lambda rows: pa.array([1] * len(rows), rows.schema.field("repeat").type))
    whole = load(tree)
    assert set(read.FOR_LOAD_ONLY) <= set(whole.layers.columns)
    assert whole.report.layer_mean_as_median > 0 and whole.report.separated_models
    lean = load(tree, without=unneeded)
    assert not set(unneeded) & set(lean.layers.columns) and len(lean.layers)
    # the load did its work with them: the same copies, superseded rows, medians from means, models kept apart
    assert vars(lean.report).keys() == vars(whole.report).keys()
    for field, value in vars(whole.report).items():
        if isinstance(value, pd.DataFrame):
            pd.testing.assert_frame_equal(getattr(lean.report, field), value)
        else:
            assert getattr(lean.report, field) == value, field
    pd.testing.assert_frame_equal(lean.layers, whole.layers[lean.layers.columns])
    # a column the load resolves by (not one it may leave unread) is read all the same, then dropped
    no_repeat = load(tree, without=("repeat", "repeat"))
    pd.testing.assert_frame_equal(no_repeat.layers, whole.layers.drop(columns="repeat"))
    options = Options(plots=False, predictor=False)
    lean_run = pipeline.run(tree, tmp_path / "lean", options)
    monkeypatch.setattr(read, "unneeded_layer_columns", lambda plots=True, predictor=True: ())
    full_run = pipeline.run(tree, tmp_path / "full", options)
    assert lean_run.tables.keys() == full_run.tables.keys()
    for name in full_run.tables:
        pd.testing.assert_frame_equal(lean_run.tables[name], full_run.tables[name], obj=name)
    text = [o.report_md.read_text().replace(str(o.out), "OUT") for o in (lean_run, full_run)]
    assert text[0] == text[1] and "oracle" in text[0]


def _rewrite(path: Path, column: str, values) -> None:
    """The Parquet file at ``path`` with ``column`` replaced by ``values(rows)``."""
    rows = pq.read_table(path)
    pq.write_table(rows.set_column(rows.schema.get_field_index(column), column, values(rows)), path)


def layer_shapes_before(layers: pd.DataFrame) -> pd.DataFrame:
    """The layer_shapes table with its groups made as before it grouped positions (commit c2b22b8)."""
    from analysis.tables.catalog.layer_shapes import ranked
    from analysis.tables.columns import SHAPE, timed
    from analysis.tree.keys import row_keys

    ok = timed(layers, [*SHAPE, "algo", "model", "p50_ms"])
    ok = ok.assign(_shape=row_keys([ok], SHAPE)[0])
    per = (
        ok.groupby(["_shape", "algo"], observed=True, sort=False)
        .agg(p50_ms=("p50_ms", "median"), occurrences=("p50_ms", "size"), models=("model", "nunique"))
        .reset_index()
    )
    shapes = ok.drop_duplicates("_shape")[["_shape", *SHAPE]]
    return ranked(per.merge(shapes, on="_shape").drop(columns="_shape"))  # the ranking after it is shared


@pytest.mark.parametrize("names_as", ["categorical", "text"])
def test_layer_shapes_grouped_by_position_are_the_table_computed_before(busy_tree, names_as):
    from analysis.tables.catalog.layer_shapes import layer_shapes

    layers = load(busy_tree).layers
    layers.loc[layers.index[::7], "host_bound"] = True
    layers.loc[layers.index[::11], "p50_ms"] = np.nan
    layers.loc[layers.index[::13], "status"] = "fallback"
    layers.loc[layers.index[5:9], "algo"] = np.nan  # in no group
    if names_as == "text":
        layers["algo"], layers["model"] = layers["algo"].astype(object), layers["model"].astype(object)
    after = layer_shapes(layers)
    assert len(after) > 100 and after["runner_up"].notna().any()
    pd.testing.assert_frame_equal(after, layer_shapes_before(layers))


def test_the_load_and_tables_warn_of_no_fragmented_frame(busy_tree):
    """The points' 150 columns come from Arrow one block each; pandas warns of a fragmented frame at each
    column added to such a frame (three places of the load and tables, at every run). The points are held in
    few blocks, so none warns."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.PerformanceWarning)
        res = load(busy_tree)
        pipeline.compute_tables(res)
    assert res.points._mgr.nblocks < 100, res.points._mgr.nblocks


def layer_summary_before(ls: pd.DataFrame) -> pd.DataFrame:
    """layer_speedup_summary as computed before, by groupby on its columns (the definition)."""
    key = ["gpu", "dtype", "layout", "algo", "reference"]
    counts = ls.groupby([*key, "verdict"], observed=True).size().unstack("verdict", fill_value=0)
    counts.columns = [str(c) for c in counts.columns]
    counts = counts.reindex(columns=list(VERDICTS), fill_value=0)
    counts.columns.name = None
    counts["layers"] = counts.sum(axis=1)
    counts["faster_share"] = counts["faster"] / counts["layers"]
    faster = ls[ls["verdict"] == "faster"]
    gain = np.exp(np.log(faster["speedup"]).groupby([faster[k] for k in key], observed=True).mean())
    counts["geomean_gain_when_faster"] = gain.reindex(counts.index)
    return counts.reset_index()[[*key, "layers", *VERDICTS, "faster_share", "geomean_gain_when_faster"]]


@pytest.mark.parametrize("verdicts_as", ["categorical", "text"])
@pytest.mark.parametrize("gaps", [False, True])
def test_layer_speedup_summary_counted_by_key_is_the_table_grouped_before(busy_tree, verdicts_as, gaps):
    from analysis.tables.catalog.layer_speedup_summary import layer_summary

    ls = layer_speedups(load(busy_tree).layers)
    ls = pd.concat([ls, ls.iloc[:40].assign(speedup=2.5)], ignore_index=True)  # groups met again further on
    ls.loc[ls.index[9:12], "verdict"] = "no_interval"
    if gaps:
        ls.loc[ls.index[:7], "dtype"] = np.nan  # a row without its key is in no group
        ls.loc[ls.index[7:9], "verdict"] = np.nan  # nor one without a verdict
    if verdicts_as == "text":  # and a key column as text
        ls["verdict"], ls["algo"] = ls["verdict"].astype(object), ls["algo"].astype(object)
    assert set(ls["verdict"].dropna()) == set(VERDICTS)
    got, want = layer_summary(ls), layer_summary_before(ls)
    assert len(got) >= 10 and got["geomean_gain_when_faster"].notna().any()
    pd.testing.assert_frame_equal(got, want, check_exact=True)


def test_the_scale_benchmark_times_the_load_and_every_table_alone(busy_tree, monkeypatch):
    """benchmarks/analysis_scale.py --steps: each table once (registry.compute_all's step), in an order where
    every table comes after its inputs, with the memory held after it and, on Linux, its own peak."""
    import importlib.util

    from analysis.tables import registry

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "analysis_scale.py"
    spec = importlib.util.spec_from_file_location("bench_analysis_scale", path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, bench)  # its dataclasses look their module up there
    spec.loader.exec_module(bench)
    steps = bench.by_step(busy_tree)
    names = [s.name for s in steps]
    assert names[0] == "load" and sorted(names[1:]) == sorted(t.name for t in registry.tables())
    for t in registry.tables():
        assert all(names.index(i) < names.index(t.name) for i in t.inputs if i in names), t.name
    assert all(s.seconds >= 0 and s.held_gb > 0 for s in steps)
    if Path("/proc/self/clear_refs").exists():
        assert all(s.peak_gb is not None and s.peak_gb >= s.held_gb - 1e-9 for s in steps)


def test_layer_speedup_summary_of_rows_none_counted_is_empty(busy_tree):
    from analysis.tables.catalog.layer_speedup_summary import layer_summary

    ls = layer_speedups(load(busy_tree).layers).iloc[:5].copy()
    ls["verdict"] = np.nan
    got = layer_summary(ls)
    assert got.empty and list(got.columns) == list(layer_summary_before(ls).columns)


def test_a_step_context_needs_one_worker(busy_tree):
    from contextlib import nullcontext

    from analysis.tables import registry

    res = load(busy_tree)
    with pytest.raises(ValueError, match="workers=2"):
        registry.compute_all(res.points, res.layers, workers=2, step=lambda name: nullcontext())


def test_the_load_takes_the_kept_layer_rows_a_column_at_a_time_from_its_own_frame(busy_tree, monkeypatch):
    """resolve_layers(consume=True), as the load calls it: the same rows as taking them whole, on a tree where
    every point was measured twice (half the layer rows superseded) and on the same rows with exact copies,
    and the load's frame is left without columns (never held twice)."""
    import copy

    from analysis.tree import resolve

    calls = []

    def spy(layers, points, report, consume=False):
        before, report_before = layers.copy(deep=True), copy.deepcopy(report)
        out = resolve.resolve_layers(layers, points, report, consume)
        calls.append((consume, layers.columns.size, before, points, report_before, out, report))
        return out

    monkeypatch.setattr(loader, "resolve_layers", spy)
    load(busy_tree)
    [(consume, left, before, points, report, out, consumed_report)] = calls
    assert consume and left == 0
    assert consumed_report.superseded["layers"] > 0  # the path that takes rows ran
    pd.testing.assert_frame_equal(out, resolve.resolve_layers(before, points, report))
    counted = ("superseded", "duplicate_copies", "orphan_layers")
    assert [getattr(report, f) for f in counted] == [getattr(consumed_report, f) for f in counted]
    copies = pd.concat([before, before.iloc[::5]], ignore_index=True)  # exact copies: dropped first
    whole = resolve.resolve_layers(copies.copy(deep=True), points, copy.deepcopy(report))
    pd.testing.assert_frame_equal(resolve.resolve_layers(copies, points, report, consume=True), whole)
    assert copies.columns.size == 0 and report.duplicate_copies["layers"] == len(before.iloc[::5])


@pytest.mark.parametrize("as_mask", [True, False])
def test_rows_taken_a_column_at_a_time_are_the_rows_taken_whole(as_mask):
    from analysis.tree.resolve import rows

    frame = pd.DataFrame(
        {
            "algo": pd.Categorical(["a", "b", "a", "c", "b"]),
            "host_bound": pd.array([True, None, False, True, None], dtype="boolean"),
            "n": np.arange(5, dtype=np.int32),
            "p50_ms": [1.0, np.nan, 3.0, 4.0, 5.0],
        },
        index=[10, 11, 12, 13, 14],
    )
    which = np.array([True, False, True, True, False]) if as_mask else np.array([3, 0, 2])
    expected = frame.iloc[np.flatnonzero(which) if as_mask else which].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows(frame, which), expected)
    pd.testing.assert_frame_equal(rows(frame, which, consume=True), expected)
    assert frame.columns.size == 0


def test_rows_keep_a_frame_of_two_columns_of_one_name_and_the_row_count_of_a_frame_without_columns():
    from analysis.tree.resolve import rows

    twice = pd.DataFrame([[1, 2], [3, 4], [5, 6]], columns=["a", "a"])
    pd.testing.assert_frame_equal(
        rows(twice, np.array([2, 0]), consume=True), twice.iloc[[2, 0]].reset_index(drop=True)
    )
    assert twice.shape == (3, 2)  # taken whole: nothing deleted from it
    assert len(rows(pd.DataFrame(index=range(4)), np.array([True, False, True, True]), consume=True)) == 3


def test_resolving_rows_out_of_order_leaves_the_callers_frame_as_it_was(busy_tree):
    """Without ``consume``, the sort of rows the files hold out of order (nothing superseded, no copies) takes
    them from the caller's frame without emptying it."""
    from analysis.tree import resolve

    res = load(busy_tree)
    shuffled = res.layers.sample(frac=1.0, random_state=0)
    before = shuffled.copy(deep=True)
    resolved = resolve.resolve_layers(shuffled, res.points, res.report)
    pd.testing.assert_frame_equal(shuffled, before)
    key = [*resolve.RESOLVE_KEY, "run_id", "direction", "layer_index"]
    pd.testing.assert_frame_equal(
        resolved.sort_values(key).reset_index(drop=True), res.layers.sort_values(key).reset_index(drop=True)
    )


def test_the_layers_of_some_points_taken_a_column_at_a_time_are_those_taken_whole(busy_tree):
    """resolve.layers_of(consume=True), as the load calls it under a settings filter: the same rows, and the
    frame given is left without columns."""
    from analysis.tree import resolve

    res = load(busy_tree)
    some = res.points.iloc[::2]  # a setting kept half of the points: the others' layer rows go
    layers = res.layers.copy(deep=True)
    out = resolve.layers_of(some, layers, consume=True)
    assert layers.columns.size == 0 and 0 < len(out) < len(res.layers)
    pd.testing.assert_frame_equal(out, resolve.layers_of(some, res.layers))


@pytest.mark.parametrize("run", [1, 2, 5, 100])
def test_by_runs_answers_as_asking_every_row(run):
    """A lookup asked once per run of equal keys and repeated: the same answer as asked row by row, with runs of
    ``run`` keys (1: no runs, asked whole), a key in two runs apart, missing keys, an empty and a one-row array."""
    from analysis.tree.keys import by_runs

    rng = np.random.default_rng(run)
    index = pd.Index(rng.permutation(500).astype(np.int64) * 3)
    keys = np.repeat(rng.integers(0, 1600, 400), run)  # about a third not in the index
    keys = np.r_[keys, keys[:run]]  # the first run again at the end
    for answer in (index.get_indexer, lambda k: pd.Index(k).isin(index)):
        assert np.array_equal(by_runs(keys, answer), answer(keys))
        assert np.array_equal(by_runs(keys[:0], answer), answer(keys[:0]))
        assert np.array_equal(by_runs(keys[:1], answer), answer(keys[:1]))
