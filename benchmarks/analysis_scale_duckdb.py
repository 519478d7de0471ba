"""The layer work of `python -m analysis` in DuckDB instead of pandas, on benchmarks/analysis_scale.py's trees:
what a columnar engine gives on the 2-core development machine before anyone rewrites the tables in SQL.

    pip install duckdb   # not a dependency of the project: this benchmark only
    python benchmarks/analysis_scale.py --scale 20m --idle-only      # makes the tree once (cached)
    python benchmarks/analysis_scale_duckdb.py --scale 20m

It times, each step in SQL over the Parquet files as they are (hive folders), with DuckDB's threads set to the
machine's cores: latest-wins resolution of the points (the latest measured_at per point) and of their layers
(the winning run's rows), each layer's fastest algorithm (the oracle's core), every layer row joined to the
reference's row of the same layer (layer_speedups' pairs, without intervals or the correction) and the median
per layer shape and algorithm (layer_shapes' core). That is less than the pandas path computes (no intervals,
no multiple-testing correction, no other table), so its time and peak are a lower bound of what the same
answers would cost in DuckDB. The tree's points are older-format rows without the layout/l2/direction columns
(the loader fills them), so the point key here is (stage, gpu, model, algo, input_size, batch_size, dtype).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

KEY = "stage, gpu, model, algo, input_size, batch_size, dtype"
LAYER = "stage, gpu, model, input_size, batch_size, dtype, layer_index"
GEOMETRY = (
    "in_channels, out_channels, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, dilation_h, dilation_w, "
    "groups, in_h, in_w"
)


def steps(root: Path) -> list[tuple[str, str]]:
    points = f"read_parquet('{root}/**/points-*.parquet', hive_partitioning = true)"
    layers = f"read_parquet('{root}/**/layers-*.parquet', hive_partitioning = true)"
    return [
        (
            "points resolved (latest wins)",
            f"CREATE TEMP TABLE won AS SELECT {KEY}, repeat, arg_max(run_id, measured_at) AS run_id "
            f"FROM {points} GROUP BY ALL",
        ),
        (
            "layers of the winning runs (29 columns)",
            f"CREATE TEMP TABLE lay AS SELECT l.{KEY.replace(', ', ', l.')}, l.layer_index, l.layer_name, "
            f"l.status, l.p50_ms, l.std_ms, l.n, l.ci95_low_ms, l.ci95_high_ms, l.host_bound, {GEOMETRY} "
            f"FROM {layers} l SEMI JOIN won w USING ({KEY}, run_id)",
        ),
        (
            "each layer's fastest algorithm",
            f"SELECT {LAYER}, arg_min(algo, p50_ms) AS fastest, min(p50_ms) AS p50_ms "
            f"FROM lay WHERE status = 'ok' GROUP BY ALL",
        ),
        (
            "every layer row against the reference's",
            f"SELECT o.*, r.p50_ms AS ref_p50_ms FROM lay o JOIN lay r USING ({LAYER}) "
            f"WHERE r.algo = 'guess' AND o.algo <> 'guess' AND o.p50_ms > 0 AND r.p50_ms > 0",
        ),
        (
            "median per layer shape and algorithm",
            f"SELECT gpu, dtype, batch_size, {GEOMETRY}, algo, median(p50_ms), count(*), count(DISTINCT model) "
            f"FROM lay WHERE status = 'ok' AND p50_ms IS NOT NULL GROUP BY ALL",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", choices=("5m", "20m"), default="20m")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/analysis-scale"), help="benchmarks/analysis_scale.py's")
    args = ap.parse_args()
    try:
        import duckdb
    except ImportError:
        sys.exit("duckdb is not installed (pip install duckdb): this benchmark needs it, the project does not")
    root = args.cache / args.scale / "results"
    if not (args.cache / args.scale / "generated.json").exists():
        sys.exit(f"no finished tree under {root}: run benchmarks/analysis_scale.py --scale {args.scale} first")
    con = duckdb.connect()
    con.execute(f"SET threads = {os.cpu_count()}")
    total = time.perf_counter()
    for name, sql in steps(root):
        t = time.perf_counter()
        if sql.startswith("SELECT"):  # the answer fetched, as the pandas path holds its tables
            said = f"{con.sql(sql).to_arrow_table().num_rows:,} rows"
        else:
            con.execute(sql)
            said = ""
        print(f"{name:42s} {time.perf_counter() - t:7.2f} s  {said}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"{'total':42s} {time.perf_counter() - total:7.2f} s  peak resident memory {peak:.2f} GB")
    limit = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    print(f"(DuckDB {duckdb.__version__}, {os.cpu_count()} threads, memory_limit {limit})")


if __name__ == "__main__":
    main()
