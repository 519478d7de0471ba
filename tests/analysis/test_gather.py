"""The layers read file by file into their frame (analysis.tree.gather) against what the load made before: one
scan of every file (read._read_table) converted whole (convert._to_pandas), the same steps on its rows."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from analysis.errors import SchemaVersionError
from analysis.tree import gather, load
from analysis.tree.convert import _to_pandas, share_categories
from analysis.tree.filters import Filters
from analysis.tree.loader import layer_steps
from analysis.tree.read import NOT_READ_BY_LOAD, _read_table
from analysis.tree.records import LoadReport
from tests.synthetic import Synthetic, default_models, generate


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gather") / "results"
    generate(
        root,
        Synthetic(
            models=default_models(n_models=2, n_layers=6, seed=5),
            gpus=("h100", "l40s"),
            algos=("torch", "guess", "gemm", "winograd"),
            sizes=(32, 64),
            batch_sizes=(1, 4),
            fallback={"winograd": "torch"},
            noise=0.05,
            repeats=2,
            seed=2,
        ),
    )
    return root


def _files(root: Path) -> list[Path]:
    return sorted(root.rglob("layers-*.parquet"))


def _rewrite(path: Path, change, **write) -> None:
    """The Parquet file at ``path`` rewritten as ``change(table)`` gives it (``write``: pq.write_table's options)."""
    pq.write_table(change(pq.read_table(path)), path, **write)


def _set(t: pa.Table, column: str, values: pa.Array) -> pa.Table:
    return t.set_column(t.schema.get_field_index(column), column, values)


def _nulls_in_a_third(t: pa.Table, column: str) -> pa.Table:
    mask = pa.array(np.arange(t.num_rows) % 3 == 0)
    return _set(t, column, pc.if_else(mask, pa.nulls(t.num_rows, t.schema.field(column).type), t.column(column)))


@pytest.fixture(scope="module")
def odd_tree(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``tree`` with what real trees hold: integers and flags with nulls, rows from before point_direction and
    host_bound (its detail instead), a file of several row groups, an empty file, an unreadable one, a file
    written before two of its text columns existed."""
    root = tmp_path_factory.mktemp("odd") / "results"
    shutil.copytree(tree, root)
    files = _files(root)
    _rewrite(files[0], lambda t: _nulls_in_a_third(_nulls_in_a_third(t, "repeat"), "n"))
    _rewrite(files[1], lambda t: _nulls_in_a_third(_nulls_in_a_third(t, "point_direction"), "host_bound"))
    _rewrite(files[2], lambda t: _nulls_in_a_third(t, "layer_name"), row_group_size=7)  # a chunk per row group
    _rewrite(files[3], lambda t: t.slice(0, 0))
    files[4].write_bytes(files[4].read_bytes()[:100])  # truncated
    _rewrite(files[5], lambda t: t.drop_columns(["point_direction", "l2"]))  # text columns it was written without
    # columns the statistics could be taken to make constant: one value in each row group, another in the next
    # (text, integer, flag); a file written without statistics; a float of one value and NaN
    _rewrite(files[6], lambda t: _by_row_group(t, 5), row_group_size=5)
    _rewrite(files[7], lambda t: _set(t, "workspace_bytes", pa.array([7] * t.num_rows)), write_statistics=False)
    _rewrite(files[8], lambda t: _set(t, "p50_ms", pa.array([np.nan if i % 2 else 5.0 for i in range(t.num_rows)])))
    return root


def _by_row_group(t: pa.Table, rows: int) -> pa.Table:
    group = np.arange(t.num_rows) // rows
    t = _set(t, "kernel_family", pa.array([f"family{g}" for g in group]))
    t = _set(t, "workspace_bytes", pa.array(group * 1024))
    return _set(t, "tensor_cores", pa.array(group % 2 == 0))


def scanned(
    roots: list[Path], runs: list[str] | None = None, unread=(), filters=Filters(), mixed=frozenset()
) -> tuple[pd.DataFrame, LoadReport]:
    """The layers frame as the load made it before: one scan, the steps on the whole table, one conversion."""
    report = LoadReport(root="x")
    table = layer_steps(set(mixed))(_read_table(roots, "layers", filters, report, runs, unread))
    return _to_pandas({"layers": table})["layers"], report


def gathered(
    roots: list[Path], runs=None, unread=(), filters=Filters(), mixed=frozenset(), workers: int = 2, group_rows=None
):
    """The layers frame read file by file: read_layers as the load calls it (with ``workers`` threads; files read
    in groups of ``group_rows`` rows, gather.GROUP_ROWS unless given)."""
    report = LoadReport(root="x")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(gather, "workers", lambda: workers)
        if group_rows is not None:
            m.setattr(gather, "GROUP_ROWS", group_rows)
        frame = gather.read_layers(roots, filters, report, runs, unread, layer_steps(set(mixed)))
    return share_categories({"layers": frame})["layers"], report


@pytest.mark.parametrize("which", ["tree", "odd_tree"])
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("group_rows", [None, 1, 200])  # every file in one group; each alone; a few together
def test_the_frame_is_what_one_scan_converted_whole_made(request, which, workers, group_rows):
    root = request.getfixturevalue(which)
    before, before_report = scanned([root])
    after, report = gathered([root], workers=workers, group_rows=group_rows)
    pd.testing.assert_frame_equal(after, before)
    assert [(b.path, b.table) for b in report.bad_files] == [(b.path, b.table) for b in before_report.bad_files]
    assert len(report.bad_files) == (which == "odd_tree")
    if which == "odd_tree":  # what the odd files made of the columns: as to_pandas makes them
        assert after["repeat"].dtype == after["n"].dtype == np.float64 and after["n"].isna().any()
        assert isinstance(after["host_bound"].dtype, pd.BooleanDtype) and after["host_bound"].isna().any()
        assert after["point_direction"].notna().all()


def test_files_are_read_in_runs_of_consecutive_files_of_about_the_rows_asked():
    starts = np.array([0, 50, 100, 100, 250, 260, 300])  # six files' first rows; the third has none
    assert gather._groups(starts, 100) == [range(0, 2), range(2, 4), range(4, 6)]
    assert gather._groups(starts, 1) == [range(0, 1), range(1, 2), range(2, 4), range(4, 5), range(5, 6)]
    assert gather._groups(starts, 10**6) == [range(0, 6)]
    assert gather._groups(np.array([0]), 100) == []


@pytest.mark.parametrize("type_", [pa.uint32(), pa.uint64(), pa.int64(), pa.int8(), pa.bool_(), pa.string()])
def test_a_column_of_one_value_in_a_file_reads_as_decoded(type_, tmp_path):
    """A column whose statistics say it holds one value is made from that value (file_table._constants): the
    same as decoding it, for unsigned integers beyond the signed range too (their raw statistics are signed)."""
    from analysis.tree.file_table import Wanted, read_file

    big = {pa.uint32(): 3_000_000_000, pa.uint64(): 2**63 + 5, pa.int64(): -(2**40), pa.int8(): -3}
    value = big.get(type_, True if type_ == pa.bool_() else "a")
    table = pa.table({"c": pa.array([value] * 4, type_), "x": [1.0, 2.0, 3.0, 4.0]})
    pq.write_table(table, tmp_path / "f.parquet", row_group_size=2)
    data = ds.dataset(tmp_path / "f.parquet", schema=table.schema)
    read = read_file(next(data.get_fragments()), Wanted.of(table.schema, ["c", "x"]), {})
    assert read.equals(table)


@pytest.mark.parametrize("longest", [16_384, 0])
def test_the_arrays_of_one_value_are_shared_within_a_read_and_let_go_after_it(tree, monkeypatch, longest):
    """The constant columns' arrays made once per value and length while the files are read (given again from
    the second file on), none kept once a read is done; none kept at all beyond REPEATED_ROWS rows."""
    from analysis.tree import file_table

    seen, forget = [], file_table.forget
    monkeypatch.setattr(file_table, "forget", lambda: seen.append(file_table._kept.cache_info()) or forget())
    monkeypatch.setattr(file_table, "REPEATED_ROWS", longest)
    assert len(load(tree).layers) and len(seen) == 2  # the points' read, the layers'
    if longest:
        assert all(info.hits > info.misses > 0 for info in seen)
    else:
        assert all(info.hits == info.misses == 0 for info in seen)
    assert file_table._kept.cache_info().currsize == 0


def test_only_the_rows_of_the_runs_asked_for_files_of_none_of_them_left_out(tree):
    files = _files(tree)
    runs = sorted({r for f in (files[0], files[-1]) for r in pq.read_table(f).column("run_id").to_pylist()})
    before, _ = scanned([tree], runs=runs)
    after, _ = gathered([tree], runs=runs)
    assert 0 < len(after) < len(gathered([tree])[0])
    assert set(after["run_id"]) == set(runs)
    pd.testing.assert_frame_equal(after, before)


def test_a_null_text_in_a_later_row_group_stays_null(odd_tree):
    path = str(_files(odd_tree)[2])
    assert pq.ParquetFile(path).metadata.num_row_groups > 1
    after, _ = gathered([odd_tree])
    names = pq.read_table(path, columns=["layer_name"]).column("layer_name")
    rows = after[after["run_id"] == pq.read_table(path, columns=["run_id"]).column("run_id")[0].as_py()]
    assert rows["layer_name"].isna().sum() == names.null_count >= 3


def test_a_filter_keeps_only_its_rows_of_a_file_whose_folders_do_not_name_the_key(tree, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(tree, root)
    moved = next(p for p in _files(root) if "gpu=l40s" in str(p))
    away = root / "stage=quick" / "model=net0" / "algo=gemm"  # no gpu= folder: its rows say l40s
    away.mkdir(parents=True)
    moved.rename(away / moved.name)
    h100 = Filters(gpu=("h100",))
    before, _ = scanned([root], filters=h100)
    after, _ = gathered([root], filters=h100)
    assert set(after["gpu"].dropna()) == {"h100"}
    pd.testing.assert_frame_equal(after, before)


def test_trees_read_together_come_tree_after_tree_in_the_order_given(tree, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(tree / "stage=quick" / "gpu=h100", a / "stage=quick" / "gpu=h100")
    shutil.copytree(tree / "stage=quick" / "gpu=l40s", b / "stage=quick" / "gpu=l40s")
    before, _ = scanned([b, a])
    after, _ = gathered([b, a])
    assert list(after["gpu"].astype(str).unique()) == ["l40s", "h100"]
    pd.testing.assert_frame_equal(after, before)


def test_models_of_one_name_kept_apart_as_the_whole_table_kept_them(tree, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(tree, root)
    for path in _files(root)[:3]:
        _rewrite(path, lambda t: _set(t, "model_hash", pa.array(["f" * 64] * t.num_rows, pa.string())))
    before, _ = scanned([root], mixed={"net0", "net1"})
    after, _ = gathered([root], mixed={"net0", "net1"})
    assert after["model"].astype(str).str.contains("@ffffffff").any()
    pd.testing.assert_frame_equal(after, before)


def test_columns_left_unread_as_the_scan_left_them(tree):
    before, _ = scanned([tree], unread=NOT_READ_BY_LOAD)
    after, _ = gathered([tree], unread=NOT_READ_BY_LOAD)
    assert not set(NOT_READ_BY_LOAD) & set(after.columns)
    pd.testing.assert_frame_equal(after, before)


def test_an_integer_beyond_int32_is_read_wide_and_its_column_kept_int64(tree, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(tree, root)
    path = _files(root)[-1]
    _rewrite(path, lambda t: _set(t, "in_channels", pa.array([2**31 + 5] * t.num_rows, pa.int64())))
    before, _ = scanned([root])
    after, _ = gathered([root])
    assert after["in_channels"].dtype == np.int64 and after["in_channels"].max() == 2**31 + 5
    assert after["out_channels"].dtype == np.int32  # the others narrowed as before
    pd.testing.assert_frame_equal(after, before)


def test_a_read_again_wide_keeps_the_unreadable_files_of_the_points_and_names_its_own_once(tree, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(tree, root)
    points = sorted(root.rglob("points-*.parquet"))[0]
    points.write_bytes(points.read_bytes()[:100])
    layers = _files(root)
    layers[0].write_bytes(layers[0].read_bytes()[:100])
    _rewrite(layers[-1], lambda t: _set(t, "in_channels", pa.array([2**31 + 5] * t.num_rows, pa.int64())))
    res = load(root)
    assert res.layers["in_channels"].max() == 2**31 + 5
    assert [(b.table, b.path) for b in res.report.bad_files] == [("points", str(points)), ("layers", str(layers[0]))]


def test_more_texts_in_a_file_than_int8_indices_hold_widen_that_column_alone(tree, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(tree, root)
    path = _files(root)[-1]  # read by the pool, while other files are written beside it

    def many(t: pa.Table) -> pa.Table:
        t = pa.concat_tables([t] * (40_000 // t.num_rows + 1))
        return _set(t, "layer_name", pa.array([f"layer{i}" for i in range(t.num_rows)], pa.string()))

    _rewrite(path, many)
    before, _ = scanned([root])
    after, _ = gathered([root])
    assert after["layer_name"].nunique() > 40_000
    pd.testing.assert_frame_equal(after, before)


def test_files_of_another_schema_version_are_named_in_the_error(tree, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(tree, root)
    path = _files(root)[1]
    _rewrite(path, lambda t: _set(t, "schema_version", pa.array([999] * t.num_rows, pa.int32())))
    with pytest.raises(SchemaVersionError, match=f"{re.escape(str(path))} .version 999"):
        gathered([root])


def test_the_load_reads_its_layers_so(odd_tree):
    res = load(odd_tree)
    assert res.report.rows_read["layers"] == len(scanned([odd_tree])[0])
    assert res.report.files["layers"] == len(_files(odd_tree)) - 1
    assert [b.path for b in res.report.bad_files] == [str(_files(odd_tree)[4])]


@pytest.mark.parametrize("filters", [Filters(), Filters(gpu=("l40s",)), Filters(model=("net1",), algo=("gemm",))])
@pytest.mark.parametrize("group", [gather.POINTS_GROUP, 1, 3])  # files read and combined together by a thread
def test_the_points_read_file_by_file_are_what_one_scan_read(tree, tmp_path, filters, group, monkeypatch):
    root = tmp_path / "results"
    shutil.copytree(tree, root)
    points = sorted(root.rglob("points-*.parquet"))
    points[-1].write_bytes(points[-1].read_bytes()[:100])  # truncated: reported, skipped
    before_report, after_report = LoadReport(root="x"), LoadReport(root="x")
    before = _read_table([root], "points", filters, before_report)
    monkeypatch.setattr(gather, "POINTS_GROUP", group)
    after = gather.read_points([root], filters, after_report)
    assert 0 < after.num_rows < sum(pq.read_metadata(p).num_rows for p in points[:-1]) or filters == Filters()
    pd.testing.assert_frame_equal(_to_pandas({"points": after})["points"], _to_pandas({"points": before})["points"])
    assert [b.path for b in after_report.bad_files] == [b.path for b in before_report.bad_files]
    assert after_report.files == before_report.files


@pytest.mark.parametrize("counted", [None, 7])  # codes counted all at once, and seven at a time
@pytest.mark.parametrize("count", [3, 130, 40_000])  # codes of int8, int16 and int32
def test_shared_categories_recode_as_pandas_does_and_leave_columns_read_sorted_alone(count, counted, monkeypatch):
    from analysis.tree import convert
    from analysis.tree.convert import _present, _recoded

    if counted:
        monkeypatch.setattr(convert, "COUNTED", counted)

    rng = np.random.default_rng(count)
    categories = [f"v{i:05d}" for i in range(count)]
    values = pd.Series(pd.Categorical.from_codes(rng.integers(-1, count // 2, 5000), categories), name="c")
    wanted = sorted({*categories[::2], "a", "zz"})  # some kept, some new, some dropped (none of them used)
    wanted = sorted(set(wanted) | _present(values))
    pd.testing.assert_series_equal(_recoded(values, wanted), values.cat.set_categories(wanted))
    assert _present(values) == set(values.dropna().unique())
    assert _recoded(values, categories) is values  # the categories it has already: no pass over its rows
