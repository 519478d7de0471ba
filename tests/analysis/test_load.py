"""Loading: latest wins (and the count), copies, orphans, unreadable files, schema versions, filters."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from analysis import checks
from analysis.errors import AnalysisError, SchemaVersionError
from analysis.load import Filters, by_setting, load, one_setting
from harness.results.schema import LAYERS, POINTS, SCHEMA_VERSION, to_table
from tests.analysis.conftest import FACTORS, MODELS, SIZES

N_POINTS = len(MODELS) * 2 * len(FACTORS) * len(SIZES)
N_LAYERS = sum(len(v) for v in MODELS.values()) * 2 * len(FACTORS) * len(SIZES)


def test_known_tree_loads_every_row(known_tree):
    res = load(known_tree)
    assert len(res.points) == N_POINTS and len(res.layers) == N_LAYERS
    assert res.report.superseded == {"points": 0, "layers": 0}
    assert res.report.repeated_points == 0 and res.report.bad_files == []


def test_latest_wins_and_is_counted(repeated_tree, known_tree):
    res = load(repeated_tree)
    truth = load(known_tree)
    assert len(res.points) == N_POINTS and len(res.layers) == N_LAYERS
    assert res.report.rows_read == {"points": 2 * N_POINTS, "layers": 2 * N_LAYERS}
    assert res.report.repeated_points == N_POINTS
    assert res.report.superseded == {"points": N_POINTS, "layers": N_LAYERS}
    key = ["gpu", "model", "algo", "input_size"]
    a = res.points.sort_values(key)["p50_ms"].to_numpy()
    b = truth.points.sort_values(key)["p50_ms"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-12)  # not the 1.5x stale run
    assert res.layers["run_id"].str.startswith("syn1-").all()


def _point(run_id: str, when: datetime, p50: float, **kw) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "stage": "s",
        "model": "m",
        "algo": "torch",
        "gpu": "local",
        "device_name": "cpu",
        "input_size": 32,
        "batch_size": 1,
        "dtype": "float32",
        "status": "ok",
        "p50_ms": p50,
        "measured_at": when,
    } | kw


def _layer(run_id: str, when: datetime, p50: float) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": run_id,
        "stage": "s",
        "model": "m",
        "algo": "torch",
        "gpu": "local",
        "input_size": 32,
        "batch_size": 1,
        "dtype": "float32",
        "layer_index": 0,
        "status": "ok",
        "p50_ms": p50,
        "measured_at": when,
    }


def _write(folder: Path, run_id: str, when: datetime, p50: float, layers: bool = True, **settings) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(to_table([_point(run_id, when, p50, **settings)], POINTS), folder / f"points-{run_id}.parquet")
    if layers:
        pq.write_table(to_table([_layer(run_id, when, p50 / 2)], LAYERS), folder / f"layers-{run_id}.parquet")


def test_latest_is_by_time_not_by_name(tmp_path):
    folder = tmp_path / "r" / "stage=s" / "gpu=local" / "model=m" / "algo=torch"
    _write(folder, "zzz-older", datetime(2026, 1, 1, tzinfo=timezone.utc), 5.0)
    _write(folder, "aaa-newer", datetime(2026, 2, 1, tzinfo=timezone.utc), 3.0)
    res = load(tmp_path / "r")
    assert res.points["p50_ms"].tolist() == [3.0]
    assert res.layers["run_id"].tolist() == ["aaa-newer"] and res.layers["p50_ms"].tolist() == [1.5]
    assert res.report.superseded == {"points": 1, "layers": 1} and res.report.repeated_points == 1


def test_piece_next_to_merged_file_is_a_copy_not_a_repeat(tmp_path):
    folder = tmp_path / "r" / "stage=s" / "gpu=local" / "model=m" / "algo=torch"
    _write(folder, "run1", datetime(2026, 1, 1, tzinfo=timezone.utc), 5.0)
    shutil.copy(folder / "points-run1.parquet", folder / "points-run1.part-s32-b1-float32.parquet")
    shutil.copy(folder / "layers-run1.parquet", folder / "layers-run1.part-s32-b1-float32.parquet")
    res = load(tmp_path / "r")
    assert len(res.points) == 1 and len(res.layers) == 1
    assert res.report.duplicate_copies == {"points": 1, "layers": 1}
    assert res.report.repeated_points == 0 and res.report.superseded == {"points": 0, "layers": 0}


def test_orphan_layers_are_counted_and_dropped(tmp_path):
    folder = tmp_path / "r" / "stage=s" / "gpu=local" / "model=m" / "algo=torch"
    _write(folder, "run1", datetime(2026, 1, 1, tzinfo=timezone.utc), 5.0)
    other = to_table([_layer("run2", datetime(2026, 1, 2, tzinfo=timezone.utc), 1.0) | {"input_size": 64}], LAYERS)
    pq.write_table(other, folder / "layers-run2.parquet")
    res = load(tmp_path / "r")
    assert res.report.orphan_layers == 1 and len(res.layers) == 1


def test_corrupt_files_are_reported_and_skipped(known_tree, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(known_tree, root)
    folder = root / "stage=quick" / "gpu=h100" / "model=alpha" / "algo=gemm"
    points = next(folder.glob("points-*.parquet"))
    points.write_bytes(b"this is not parquet")
    layers = next((root / "stage=quick" / "gpu=v100" / "model=beta" / "algo=torch").glob("layers-*.parquet"))
    layers.write_bytes(layers.read_bytes()[: len(layers.read_bytes()) // 2])  # truncated
    res = load(root)
    bad = {Path(b.path).name: b.table for b in res.report.bad_files}
    assert bad == {points.name: "points", layers.name: "layers"}
    assert len(res.points) == N_POINTS - len(SIZES)  # the rest is there
    assert not ((res.points["model"] == "alpha") & (res.points["gpu"] == "h100") & (res.points["algo"] == "gemm")).any()
    found = checks.findings(res.points, res.report)
    assert (found["kind"] == "unreadable file").sum() == 2


def test_other_schema_version_is_refused(tmp_path):
    folder = tmp_path / "r" / "stage=s" / "gpu=local" / "model=m" / "algo=torch"
    _write(folder, "ok-run", datetime(2026, 1, 1, tzinfo=timezone.utc), 5.0)
    future = to_table(
        [_point("new-run", datetime(2026, 1, 2, tzinfo=timezone.utc), 4.0, schema_version=SCHEMA_VERSION + 1)], POINTS
    )
    pq.write_table(future, folder / "points-new-run.parquet")
    with pytest.raises(SchemaVersionError, match=rf"points-new-run\.parquet \(version {SCHEMA_VERSION + 1}\)"):
        load(tmp_path / "r")


def test_filters(known_tree):
    res = load(known_tree, Filters(gpu=("v100",), algo=("torch", "gemm")))
    assert set(res.points["gpu"]) == {"v100"} and set(res.points["algo"]) == {"torch", "gemm"}
    assert set(res.layers["algo"]) == {"torch", "gemm"}
    assert len(res.points) == len(MODELS) * 2 * len(SIZES)


def test_filter_value_not_present_lists_the_values(known_tree):
    with pytest.raises(AnalysisError, match=r"--model gamma: not in .*; present: alpha, beta"):
        load(known_tree, Filters(model=("gamma",)))


def _two_settings(tmp_path: Path) -> Path:
    """One point measured with strict FP32 as a CUDA graph, then with tensor-op math eagerly (the latest)."""
    folder = tmp_path / "r" / "stage=s" / "gpu=local" / "model=m" / "algo=torch"
    _write(
        folder,
        "fma-graph",
        datetime(2026, 1, 1, tzinfo=timezone.utc),
        4.0,
        math_type="fma",
        cuda_graph=True,
        fallback_policy="none",
        cudnn_benchmark=False,
    )
    _write(
        folder,
        "tf32-eager",
        datetime(2026, 2, 1, tzinfo=timezone.utc),
        2.0,
        math_type="tensor_op",
        cuda_graph=False,
        fallback_policy="none",
        cudnn_benchmark=False,
    )
    return tmp_path / "r"


def test_two_settings_of_a_point_both_stay_and_are_told_apart(tmp_path):
    """Without a filter, neither row replaces the other: the analysis compares each setting apart."""
    res = load(_two_settings(tmp_path))
    assert sorted(res.points["run_id"]) == ["fma-graph", "tf32-eager"] == sorted(res.layers["run_id"])
    assert res.report.repeated_points == 0 and res.report.superseded == {"points": 0, "layers": 0}
    parts = by_setting(res)
    assert [s.label for s, _ in parts] == ["math_type=fma, cuda_graph=true", "math_type=tensor_op, cuda_graph=false"]
    assert [part.points["run_id"].tolist() for _, part in parts] == [["fma-graph"], ["tf32-eager"]]
    assert [part.layers["run_id"].tolist() for _, part in parts] == [["fma-graph"], ["tf32-eager"]]
    with pytest.raises(
        AnalysisError,
        match=r"plan make: these results hold 2 settings \(math_type=fma, cuda_graph=true; "
        r"math_type=tensor_op, cuda_graph=false\); choose one with --math --graph",
    ):
        one_setting(res, "plan make")


@pytest.mark.parametrize(
    ("filters", "run"),
    [
        (Filters(math=("fma",)), "fma-graph"),
        (Filters(graph=("true",)), "fma-graph"),
        (Filters(graph=("False",), math=("tensor_op",)), "tf32-eager"),
        (Filters(fallback=("none",), benchmark=("false",), math=("fma",)), "fma-graph"),
    ],
)
def test_setting_filters_pick_the_rows_of_one_setting_and_their_layers(tmp_path, filters, run):
    res = load(_two_settings(tmp_path), filters)
    assert res.points["run_id"].tolist() == [run] and res.layers["run_id"].tolist() == [run]
    assert res.report.orphan_layers == 0  # the other setting's layers are not mistaken for never-committed ones
    assert res.report.repeated_points == 0


def test_a_setting_filter_keeps_the_layers_of_the_points_it_keeps_not_of_their_whole_run(tmp_path):
    """One graph=auto run: captured at 32 px, timed eagerly at 64 px (the capture failed there)."""
    folder = tmp_path / "r" / "stage=s" / "gpu=local" / "model=m" / "algo=torch"
    folder.mkdir(parents=True)
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [
        _point("run1", when, 1.0, input_size=32, cuda_graph=True),
        _point("run1", when, 2.0, input_size=64, cuda_graph=False),
    ]
    layers = [_layer("run1", when, 0.5) | {"input_size": size} for size in (32, 64)]
    pq.write_table(to_table(rows, POINTS), folder / "points-run1.parquet")
    pq.write_table(to_table(layers, LAYERS), folder / "layers-run1.parquet")
    for graph, size in (("true", 32), ("false", 64)):
        res = load(tmp_path / "r", Filters(graph=(graph,)))
        assert res.points["input_size"].tolist() == [size] and res.layers["input_size"].tolist() == [size]
        assert res.report.orphan_layers == 0


def test_settings_that_do_not_apply_to_a_row_keep_it(tmp_path):
    """torch replaces no layer (any --fallback keeps it: it is every algorithm's baseline); a null setting
    (the CPU has no math type, imported rows know few settings) does not apply."""
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for algo, run, extra in (
        ("winograd", "w", {"fallback_policy": "torch", "math_type": "fma"}),
        ("torch", "t", {"fallback_policy": "none", "math_type": "fma"}),
        ("gemm", "cpu", {"fallback_policy": "torch", "math_type": None}),
    ):
        _write(
            tmp_path / "r" / "stage=s" / "gpu=local" / "model=m" / f"algo={algo}", run, when, 1.0, algo=algo, **extra
        )
    res = load(tmp_path / "r", Filters(fallback=("torch",), math=("fma",)))
    assert sorted(res.points["algo"].astype(str)) == ["gemm", "torch", "winograd"]
    assert sorted(load(tmp_path / "r", Filters(fallback=("none",))).points["algo"].astype(str)) == ["torch"]


def test_files_outside_the_four_level_layout_and_encoded_folder_names_still_load(tmp_path):
    """The partition keys are read dictionary-encoded; the dictionaries come from every file's own folders
    (a stray partial folder, a URI-encoded model name), as Arrow reads them, not only from complete leaves."""
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    _write(
        tmp_path / "r" / "stage=s" / "gpu=local" / "model=al%70ha v2" / "algo=torch",
        "run1",
        when,
        1.0,
        model="alpha v2",
    )
    _write(tmp_path / "r" / "stage=old" / "gpu=local", "run2", when, 2.0, stage="old", input_size=64)
    res = load(tmp_path / "r")
    assert sorted(res.points["model"].astype(str)) == ["alpha v2", "m"]
    assert sorted(res.points["stage"].astype(str)) == ["old", "s"]
    assert load(tmp_path / "r", Filters(stage=("s",))).points["model"].astype(str).tolist() == ["alpha v2"]


@pytest.mark.parametrize(
    ("filters", "message"),
    [
        (
            Filters(math=("tf32",)),
            "--math tf32: no point under .* was measured with math_type tf32; present: fma, tensor_op",
        ),
        (Filters(graph=("yes",)), "--graph yes: .*; present: false, true"),
        (
            Filters(math=("fma",), graph=("false",)),
            "no measured points under .* match --math fma --graph false together",
        ),
    ],
)
def test_setting_filter_values_not_present_are_errors_that_list_the_values(tmp_path, filters, message):
    with pytest.raises(AnalysisError, match=message):
        load(_two_settings(tmp_path), filters)


def test_missing_results_dir(tmp_path):
    with pytest.raises(AnalysisError, match="does not exist"):
        load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(AnalysisError, match="no points-"):
        load(tmp_path / "empty")


def test_filters_that_match_nothing_together(tmp_path):
    _write(
        tmp_path / "r" / "stage=a" / "gpu=local" / "model=m" / "algo=torch",
        "r1",
        datetime(2026, 1, 1, tzinfo=timezone.utc),
        1.0,
    )
    _write(
        tmp_path / "r" / "stage=b" / "gpu=h100" / "model=m" / "algo=torch",
        "r2",
        datetime(2026, 1, 1, tzinfo=timezone.utc),
        1.0,
    )
    with pytest.raises(AnalysisError, match="together"):
        load(tmp_path / "r", Filters(stage=("a",), gpu=("h100",)))


def test_layers_resolved_by_codes_equal_those_resolved_by_merging_the_columns(repeated_tree, tmp_path):
    """resolve_layers' fast path (integer point codes) against the plain merge on the key columns, on a tree
    with superseded runs, plus an orphan layer, a copy of a piece beside its merged file and a copy under a
    name that says another run (copies are found by content, not by file name)."""
    from analysis.load import LoadReport, _read, _resolve_layers_by_merge, resolve_layers, resolve_points

    tree = tmp_path / "tree"
    shutil.copytree(repeated_tree, tree)
    leaf = next(p.parent for p in tree.rglob("layers-*.parquet"))
    (first,) = list(leaf.glob("layers-syn1-*.parquet"))[:1]
    shutil.copy(first, leaf / first.name.replace(".parquet", ".part-s32-b1-float32.parquet"))
    shutil.copy(first, leaf / first.name.replace(".parquet", "-backup.parquet"))
    orphan = pq.read_table(first).slice(0, 1).to_pylist()[0] | {"input_size": 9999}
    pq.write_table(to_table([orphan], LAYERS), leaf / "layers-orphan.parquet")
    frames, report = _read([tree], Filters())
    points = resolve_points(frames["points"], report)
    fast = resolve_layers(frames["layers"], points, report)
    slow_report = LoadReport(root="x")
    slow = _resolve_layers_by_merge(frames["layers"].drop_duplicates(), points, slow_report)
    assert report.orphan_layers == slow_report.orphan_layers == 1
    assert report.superseded["layers"] == slow_report.superseded["layers"] == N_LAYERS
    assert report.duplicate_copies["layers"] == 2 * pq.read_metadata(first).num_rows
    key = ["stage", "gpu", "model", "algo", "input_size", "batch_size", "dtype", "layer_index"]
    a, b = (f.sort_values(key).reset_index(drop=True) for f in (fast, slow))
    assert a.astype(str).equals(b.astype(str))


def test_layer_rows_come_grouped_by_point_in_layer_order_even_from_interleaved_files(tmp_path):
    folder = tmp_path / "r" / "stage=s" / "gpu=local" / "model=m" / "algo=torch"
    folder.mkdir(parents=True)
    when = datetime(2026, 1, 1, tzinfo=timezone.utc)
    sizes = (32, 64)
    pq.write_table(
        to_table([_point("run1", when, 5.0, input_size=s) for s in sizes], POINTS), folder / "points-run1.parquet"
    )
    rows = [_layer("run1", when, 1.0) | {"input_size": s, "layer_index": i} for i in (2, 0, 1) for s in sizes]
    pq.write_table(to_table(rows, LAYERS), folder / "layers-run1.parquet")
    res = load(tmp_path / "r")
    got = list(zip(res.layers["input_size"], res.layers["layer_index"]))
    assert got == [(32, 0), (32, 1), (32, 2), (64, 0), (64, 1), (64, 2)]


def test_a_tree_written_before_cpu_threads_loads_and_is_not_compared_with_rows_that_record_it(tmp_path):
    """Files without the cpu_threads column (older harness): the column reads as null; such CPU rows are a
    setting of their own, beside the rows that record their threads."""
    folder = tmp_path / "r" / "stage=s" / "gpu=local" / "model=m" / "algo=torch"
    folder.mkdir(parents=True)
    old = to_table([_point("old", datetime(2026, 1, 1, tzinfo=timezone.utc), 4.0, device="cpu")], POINTS)
    pq.write_table(old.drop_columns(["cpu_threads"]), folder / "points-old.parquet")
    _write(folder, "new", datetime(2026, 2, 1, tzinfo=timezone.utc), 3.0, layers=False, device="cpu", cpu_threads=2)
    res = load(tmp_path / "r")
    assert res.points.set_index("run_id")["cpu_threads"].isna().to_dict() == {"new": False, "old": True}
    assert [s.label for s, _ in by_setting(res)] == ["cpu_threads=2", "cpu_threads=unknown"]
