"""`python -m analysis` end to end: a real (tiny) CPU run of the harness, then the report; and user errors."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest

from analysis.__main__ import main
from tests.conftest import run_cli

TINY = [
    "stage.sizes=[32,40]",
    "stage.warmup_iters=1",
    "stage.min_iters=6",
    "stage.max_iters=6",
    "stage.max_time_s=1",
    "stage.layer_iters=6",
    "device=cpu",
]  # 6: the fewest with intervals; the CPU (no energy)


@pytest.fixture(scope="module")
def real_tree(tmp_path_factory) -> Path:
    """Two models x two algorithms x two sizes, measured for real on the CPU by the harness."""
    root = tmp_path_factory.mktemp("real") / "results"
    done = run_cli("-m", "model=resnet18,mobilenet_v2", "algo=torch,gemm", *TINY, f"results_dir={root}")
    assert done.returncode == 0, done.stderr[-3000:]
    return root


@pytest.fixture(scope="module")
def analysed(real_tree, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "analysis"
    done = run_cli(str(real_tree), "--out", str(out), "--predictor", "--threads", "1", module="analysis")
    assert done.returncode == 0, done.stderr[-3000:]
    return out, done


def test_end_to_end_writes_report_tables_figures_and_predictor(analysed):
    out, done = analysed
    assert f"report: {out / 'report.md'}" in done.stdout.replace("\n", "")
    assert "Largest gain beyond noise" in done.stdout
    assert "resnet18" in done.stdout and "mobilenet_v2" in done.stdout
    for name in ("ratio", "speedup-torch", "layers", "roofline", "support", "parity-latency"):
        png = out / "figures" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert (out / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml"), name
    assert not (out / "figures" / "energy-latency.png").exists()  # no energy on the CPU: no empty figure
    assert not (out / "figures" / "speedup-guess.png").exists()  # guess is a GPU algorithm
    for table in (
        "summary",
        "speedups",
        "speedup_summary",
        "winners",
        "layer_speedup_summary",
        "algorithms",
        "best",
        "edp",
        "layer_shapes",
        "support",
        "oracle",
        "coverage",
        "failures",
        "warnings",
    ):
        assert (out / "tables" / f"{table}.parquet").is_file() and (out / "tables" / f"{table}.csv").is_file()
    best = pd.read_parquet(out / "tables" / "best.parquet")
    assert len(best) == 4 and set(best["best_algo"]) <= {"torch", "gemm"}
    assert (best["algos_ok"] == 2).all()
    speedups = pd.read_parquet(out / "tables" / "speedups.parquet")
    assert len(speedups) == 4 and set(speedups["algo"]) == {"gemm"} and set(speedups["reference"]) == {"torch"}
    assert ((speedups["speedup_low"] <= speedups["speedup"]) & (speedups["speedup"] <= speedups["speedup_high"])).all()
    winners = pd.read_parquet(out / "tables" / "winners.parquet")
    assert len(winners) == 4 and set(winners["winner"]) <= {"torch", "gemm", "tie"}
    oracle = pd.read_parquet(out / "tables" / "oracle.parquet")
    assert (oracle["layers"] == oracle["model"].map({"resnet18": 20, "mobilenet_v2": 52})).all()
    assert (out / "predictor" / "latency.pkl").is_file() and (out / "predictor" / "latency-metrics.json").is_file()
    for what in ("metrics", "folds", "fold_summary", "regret"):  # the predictor's tables beside the others
        assert (out / "tables" / f"predictor_latency_{what}.csv").is_file(), what
    regret = pd.read_parquet(out / "tables" / "predictor_latency_regret.parquet")
    pooled = regret[regret["held_out"] == "all folds"].set_index("split")
    assert pooled.loc["leave-one-model-out", "layers"] == 2 * (20 + 52)  # every layer at two sizes, torch vs gemm
    assert ((regret["within_5pct"] >= 0) & (regret["within_5pct"] <= 1)).all()
    summary = pd.read_parquet(out / "tables" / "predictor_latency_fold_summary.parquet").set_index("split")
    assert summary.loc["leave-one-model-out", "folds"] == 2
    metrics = pd.read_parquet(out / "tables" / "predictor_latency_metrics.parquet")
    assert metrics.loc[metrics["level"] == "model", "remainder_share"].between(0, 1).all()
    for name in ("parity-latency", "regret-latency"):
        assert (out / "figures" / f"{name}.svg").is_file(), name


def test_report_markdown_and_self_contained_html(analysed):
    out, _ = analysed
    md = (out / "report.md").read_text()
    headings = [
        "## Summary",
        "## The answer",
        "## Coverage",
        "## Warnings",
        "## Fastest algorithm",
        "## Per-layer oracle",
        "## Layer shapes and support",
        "## Energy",
        "## Predictor",
    ]
    assert [md.index(h) for h in headings] == sorted(md.index(h) for h in headings)  # the summary comes first
    assert "Scope: 8 measurements (8 ok) of 2 algorithm(s) at 4 points" in md and "Caveats of the data:" in md
    assert "latest wins: 0 points were measured more than once" in md
    for link in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (out / link).is_file(), link
    html = (out / "report.html").read_text()
    images = re.findall(r"src='data:image/png;base64,([^']+)'", html)
    assert len(images) == len(re.findall(r"!\[", md)) >= 5
    assert all(base64.b64decode(i)[:4] == b"\x89PNG" for i in images)
    assert "src='figures/" not in html and 'src="figures/' not in html
    predictor_section = md[md.index("## Predictor") :]
    for said in ("worst fold", "Choosing an algorithm", "random pick", "remainder_share", "regret-latency.png"):
        assert said in predictor_section, said


def test_the_predictor_is_opt_in(real_tree, tmp_path):
    out = tmp_path / "out"
    assert main([str(real_tree), "--out", str(out), "--no-plots"]) == 0
    assert not (out / "predictor").exists()
    assert "Not run (add --predictor" in (out / "report.md").read_text()


def test_repeated_run_is_resolved_latest_wins(real_tree, tmp_path):
    root = tmp_path / "results"
    shutil.copytree(real_tree, root)
    done = run_cli("model=resnet18", "algo=torch", "remeasure=true", *TINY, f"results_dir={root}")
    assert done.returncode == 0, done.stderr[-3000:]
    out = tmp_path / "out"
    assert main([str(root), "--out", str(out), "--no-plots"]) == 0
    md = (out / "report.md").read_text()
    assert "latest wins: 2 points were measured more than once; 2 older point rows and 40 older layer rows" in md


@pytest.mark.parametrize(
    "args,message",
    [
        (["{root}", "--model", "vgg99"], r"--model vgg99: not in .*; present: mobilenet_v2, resnet18"),
        (["{root}", "--algo", "fft,gemm"], r"--algo fft: not in .*; present: gemm, torch"),
        (["{missing}"], r"argument RESULTS: .*nope is not valid: it does not exist"),
        (["{root}", "--out", "{root}/analysis"], r"inside the results directory"),
    ],
)
def test_user_errors_exit_2_with_one_line(real_tree, tmp_path, capsys, args, message):
    argv = [a.format(root=real_tree, missing=tmp_path / "nope") for a in args]
    if "--out" not in argv:
        argv += ["--out", str(tmp_path / "out")]
    try:
        code = main(argv)
    except SystemExit as e:  # refused by the parser (harness.validate) before any tree is read
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert re.search(message, err), err
