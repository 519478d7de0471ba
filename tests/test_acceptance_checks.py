"""The checks of the sweep over constructed rows (good ones pass, bad ones fail), and rows read back from the
store."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from harness import acceptance as acc
from harness.acceptance import (
    FAIL,
    INFO,
    PASS,
    JobResult,
    as_rows,
    check_correctness,
    check_cv,
    check_errors,
    check_guess_vs_torch,
    check_jobs,
    check_support,
    evaluate,
)
from tests.acceptance_rows import (
    good_evidence,
    point,
    sweep_rows,
)

# ---- checks: good rows pass, bad rows fail ---------------------------------------------------------------------


def test_good_evidence_passes_every_check():
    checks = evaluate(good_evidence())
    assert all(c.verdict in (PASS, INFO) for c in checks), [(c.name, c.figure) for c in checks if c.verdict == FAIL]
    assert acc.passed(checks)
    assert {c.name for c in checks if c.verdict == INFO} == {
        "support matrix",
        "guess: cuDNN's choices",
        "layers not run as asked",
        "launch-bound points",
        "guess / torch (eager)",
        "cv per point",
        "cv per point (eager)",
        "CUDA-graph capture",
        "guess and torch: same kernels",
    }


def test_errors_fail_and_are_listed():
    rows = sweep_rows()
    assert check_errors(rows).verdict == PASS
    rows[3] |= {"status": "error", "error": "CudnnError: CUDNN_STATUS_EXECUTION_FAILED"}
    check = check_errors(rows)
    assert check.verdict == FAIL and f"1 of {len(rows)}" in check.figure
    assert (
        "CUDNN_STATUS_EXECUTION_FAILED" in check.details[0]["error"]
        and "[float32 fma fallback=none]" in check.details[0]["point"]
    )


def test_correctness_fails_on_an_unverified_point_and_reports_the_worst_error_per_config():
    rows = sweep_rows()
    rows[0]["max_rel_err"] = 4e-4
    check = check_correctness(rows)
    assert check.verdict == PASS and "float32 fma fallback=none: 0.0004" in check.figure
    assert "float32 tensor_op fallback=none: 2e-06" in check.figure
    assert all(d["algo"] != "torch" for d in check.details)
    not_checked = [dict(r) for r in rows]
    not_checked[1]["verified"] = None  # an ok point nobody compared with the baseline
    assert check_correctness(not_checked).verdict == FAIL
    beyond = rows + [
        point(algo="fft", size=128, status="error", verified=False, max_rel_err=0.5, error="verification failed: ...")
    ]
    check = check_correctness(beyond)
    assert check.verdict == FAIL and "1 point(s) not verified" in check.figure
    fft = next(d for d in check.details if d["algo"] == "fft")
    assert (
        fft["float32 fma fallback=none"] == "2e-06 (NOT VERIFIED: 1 of 2)"
        and fft["float32 tensor_op fallback=none"] == "2e-06"
    )
    assert [d["algo"] for d in check.details][:2] == ["implicit_gemm", "implicit_precomp_gemm"]  # cuDNN's order


def test_support_matrix_says_what_ran_per_config():
    rows = sweep_rows()
    for r in rows:
        if r["algo"] == "fft_tiling" and r["fallback_policy"] == "none":
            r |= {"status": "unsupported", "error": "3 of 53 conv layers cannot run fft_tiling"}
        if r["algo"] == "fft_tiling" and r["fallback_policy"] == "torch":
            r["algo_fallback_layers"] = 3
    check = check_support(rows)
    assert check.verdict == INFO and check.figure == "ok 28, unsupported 2 of 30 points"
    row = next(d for d in check.details if d["algo"] == "fft_tiling")
    assert row["float32 fma fallback=none"] == "unsupported"
    assert row["float32 fma fallback=torch"] == "ok (fallback layers 3)"
    assert list(row)[:3] == ["model", "algo", "float32 fma fallback=none"]


def test_cv_of_3_percent_fails():
    rows = sweep_rows()
    assert check_cv(rows).verdict == PASS and "30 of 30" in check_cv(rows).figure
    rows[5]["cv"] = 0.03
    check = check_cv(rows)
    assert check.verdict == FAIL and "29 of 30" in check.figure and "worst 3.00%" in check.figure
    assert len(check.details) == 1 and check.details[0]["cv"] == "3.00%"
    assert check_cv([point(status="unsupported", cv=None)]).verdict == FAIL  # nothing measured


def test_jobs_not_run_or_failed_fail():
    jobs = good_evidence().jobs
    assert check_jobs(jobs).verdict == PASS
    jobs[0] = JobResult(jobs[0].job, "cmd", "failed", "ConfigError: algo=x needs cuDNN")
    jobs[1] = JobResult(jobs[1].job, "cmd")  # not run: the time budget was spent
    check = check_jobs(jobs)
    assert check.verdict == FAIL and "1 not run (time budget)" in check.figure
    assert {d["outcome"] for d in check.details} == {"failed", "not run"}


def test_rows_read_back_from_the_store_give_the_same_checks(tmp_path: Path):
    """Rows written with the results schema and read back (pyarrow, hive) evaluate like the runner's dicts."""
    from harness.results import read
    from harness.results.layout import Partition
    from harness.results.store import ResultStore

    rows = sweep_rows()
    rows[4]["cv"] = 0.015  # one worst point, whatever order the rows come back in
    runs: dict[str, list[dict]] = {}
    for r in rows:  # a run per model x algo x configuration, as the sweep makes them
        r["run_id"] = f"run{list(runs).index(r['run_id']) if r['run_id'] in runs else len(runs)}"
        runs.setdefault(r["run_id"], []).append(r)
    for run_id, group in runs.items():
        store = ResultStore(tmp_path, Partition("sanity", "local", group[0]["model"], group[0]["algo"]), run_id)
        store.open()
        for r in group:
            store.write_point(r, [])
        store.compact()
    back = as_rows(read(tmp_path, "points"))
    assert len(back) == len(rows) and all(isinstance(r["verified"], (bool, type(None))) for r in back)
    for check in (check_cv, check_correctness, check_guess_vs_torch, check_errors):
        assert check(back).figure == check(rows).figure and check(back).verdict == check(rows).verdict
    assert check_support(back).details == check_support(rows).details
    nan = as_rows(pd.DataFrame([point(cv=float("nan"))]))
    assert nan[0]["cv"] is None
