"""One key, one measurement: rows of two settings never replace each other and are never compared."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from analysis import pipeline, settings
from analysis.findings import caveats
from analysis.load import Filters, by_setting, load
from analysis.tree.settings import TRAINING
from tests.synthetic import point_row, write_points

SIZES = (224, 256, 288, 320)
# p50 (ms) per (cuda_graph, math): as CUDA graphs every algorithm takes the GPU's time; eagerly the host sets the
# pace at batch 1; tensor-op math halves the GPU's time. Within a setting no algorithm is 1.34x another; across
# graph and eager, or fma and tensor_op, 2x to 12x.
TRUTH = {
    (True, "fma"): {"guess": 1.0, "implicit_precomp_gemm": 1.0, "torch": 1.02},
    (False, "fma"): {"guess": 6.34, "implicit_precomp_gemm": 6.3, "torch": 6.0},
    (True, "tensor_op"): {"guess": 0.5, "implicit_precomp_gemm": 0.5, "torch": 0.51},
    (False, "tensor_op"): {"guess": 6.3, "implicit_precomp_gemm": 6.3, "torch": 6.0},
}
FALLS_BACK = 320  # implicit_precomp_gemm cannot run two layers at this size: unsupported, or those run by torch


def _row(algo: str, size: int, graph: bool, math: str, fallback: str, at: float, run: str) -> dict:
    p50, fell_back, status = TRUTH[(graph, math)][algo], 0, "ok"
    if algo == "implicit_precomp_gemm" and size == FALLS_BACK:
        if fallback == "none":
            p50, status = None, "unsupported"
        else:
            p50, fell_back = p50 * 1.2, 2
    return point_row(
        size,
        p50,
        ci=0.01,
        run=run,
        at=at,
        algo=algo,
        model="vgg16",
        device="cuda",
        status=status,
        backend="torch" if algo == "torch" else "cudnn",
        cuda_graph=graph,
        math_type=math,
        fallback_policy=fallback,
        algo_fallback_layers=fell_back,
        cpu_threads=16,
    )


@pytest.fixture(scope="module")
def acceptance_like(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same points measured as CUDA graphs and eagerly, in FP32 strict and TF32, with fallback none and
    torch; guess's latest row of each point is eager (slow: the host), every other algorithm's latest a graph."""
    root = tmp_path_factory.mktemp("settings") / "results"
    rows = []
    for algo in ("guess", "implicit_precomp_gemm", "torch"):
        order = [(g, m, f) for g in (True, False) for m in ("fma", "tensor_op") for f in ("none", "torch")]
        if algo != "guess":
            order.reverse()  # graphs last
        for at, (graph, math, fallback) in enumerate(order):
            run = f"{algo}-{'graph' if graph else 'eager'}-{math}-{fallback}"
            rows += [_row(algo, size, graph, math, fallback, at, run) for size in SIZES]
    write_points(root, rows)
    return root


def _summary(report: str) -> list[str]:
    """The report's summary: its findings and caveats, one line each."""
    summary = report.split("## Summary", 1)[1].split("\n## ", 1)[0]
    return [line[2:] for line in summary.splitlines() if line.startswith("- ")]


def test_no_speedup_or_finding_crosses_settings(acceptance_like: Path, tmp_path: Path):
    outcome = pipeline.run(acceptance_like, tmp_path / "out", pipeline.Options(plots=False))
    speedups = outcome.tables["speedups"]
    labels = {
        "math_type=fma, cuda_graph=true",
        "math_type=fma, cuda_graph=false",
        "math_type=tensor_op, cuda_graph=true",
        "math_type=tensor_op, cuda_graph=false",
    }
    assert set(speedups["setting"]) == labels
    # Within a setting every ratio is within 1.34x; one across graph and eager or fma and tensor_op as graphs
    # would be 2x to 12x.
    assert len(speedups) == 4 * 4 * len(SIZES)  # per setting and size: guess and torch, each against the others
    assert speedups["speedup"].between(0.75, 1.34).all(), speedups[["setting", "algo", "reference", "speedup"]]
    assert outcome.tables["speedup_summary"]["geomean_speedup"].between(0.75, 1.34).all()
    lines = _summary(outcome.report_md.read_text())
    gains = [float(g) for line in lines for g in re.findall(r"the largest gain is .*?: (\d+\.\d+)x", line)]
    assert gains and max(gains) < 1.34, lines  # not "implicit_precomp_gemm beats cuDNN's heuristic by 6.34x"
    assert not any(line.startswith("On h100") for line in lines)  # every finding names its setting first
    assert {line.split("]", 1)[0][1:] for line in lines if line.startswith("[")} == labels
    assert any(
        line.startswith("These results hold 4 settings, which differ in math_type, cuda_graph") for line in lines
    )


def test_fallback_is_a_setting_only_where_a_layer_fell_back(acceptance_like: Path):
    """fallback=none and fallback=torch measured the same where no layer fell back (one setting: the newest row
    wins); the point where two layers fell back to torch is measured only in the fallback=torch setting, and
    there the same point ``unsupported`` under fallback=none does not replace it."""
    res = load(acceptance_like)
    parts = dict((s.label, (s, r)) for s, r in by_setting(res))
    assert len(parts) == 4
    for setting, part in parts.values():
        assert setting.fixed()["fallback_policy"] == "torch"
        assert part.points.groupby(["algo", "input_size"], observed=True).size().eq(1).all()  # one row per point
        ipg = part.points[part.points["algo"].astype(str) == "implicit_precomp_gemm"].set_index("input_size")
        assert ipg.loc[FALLS_BACK, "status"] == "ok" and ipg.loc[FALLS_BACK, "algo_fallback_layers"] == 2
    strict = load(acceptance_like, Filters(fallback=("none",)))
    ipg = strict.points[strict.points["algo"].astype(str) == "implicit_precomp_gemm"]
    assert set(ipg.loc[ipg["input_size"] == FALLS_BACK, "status"]) == {"unsupported"}


def test_one_setting_chosen_has_no_mixed_settings_caveat(acceptance_like: Path, tmp_path: Path):
    filters = Filters(graph=("true",), math=("fma",), fallback=("none",))
    res = load(acceptance_like, filters)
    assert len(by_setting(res)) == 1
    assert not [c for c in caveats(res.points, 1.0, 0.05) if "settings" in c]
    outcome = pipeline.run(acceptance_like, tmp_path / "out", pipeline.Options(filters=filters, plots=False))
    lines = _summary(outcome.report_md.read_text())
    assert (
        "setting" not in outcome.tables["speedups"] and outcome.tables["speedups"]["speedup"].between(0.75, 1.34).all()
    )
    assert not any(line.startswith(("These results hold", "[")) for line in lines), lines


def test_a_setting_does_not_apply_where_it_cannot_change_the_row():
    rows = pd.DataFrame(
        [
            {
                "status": "ok",
                "algo": "torch",
                "device": "cuda",
                "backend": "torch",
                "fallback_policy": "torch",
                "algo_fallback_layers": 0,
                "math_type": "fma",
                "cuda_graph": True,
                "cpu_threads": 8,
            },
            {
                "status": "ok",
                "algo": "gemm",
                "device": "cpu",
                "backend": "reference",
                "fallback_policy": "torch",
                "algo_fallback_layers": 3,
                "math_type": None,
                "cuda_graph": None,
                "cpu_threads": None,
            },
            {
                "status": "unsupported",
                "algo": "fft",
                "device": "cuda",
                "backend": "cudnn",
                "fallback_policy": "none",
                "algo_fallback_layers": 0,
                "math_type": "fma",
                "cuda_graph": None,
                "cpu_threads": 8,
            },
        ]
    )
    v = settings.values(rows)
    assert v.loc[0, ["backend", "fallback_policy", "cpu_threads", "math_type", "cuda_graph"]].tolist() == [
        settings.ANY,
        settings.ANY,
        settings.ANY,
        "fma",
        "true",
    ]
    assert v.loc[1, ["backend", "fallback_policy", "math_type", "cuda_graph", "cpu_threads"]].tolist() == [
        "reference",
        "torch",
        settings.ANY,
        settings.ANY,
        settings.UNKNOWN,
    ]  # measured before cpu_threads existed
    assert v.loc[2, ["fallback_policy", "cuda_graph"]].tolist() == [settings.ANY, settings.ANY]  # measured nothing


def test_the_training_steps_own_settings_keep_its_steps_apart_and_leave_forward_rows_alone():
    """A train-mode and an eval-mode step of one point (or sgd and adam) are two settings, never one point
    resolved latest-wins; a training row from before train_model_mode ran in eval; a forward row runs no step."""
    step = {"status": "ok", "algo": "gemm", "device": "cpu", "backend": "reference", "direction": "train_step"}
    step |= {"train_loss": "cross_entropy", "train_optimizer": "sgd", "train_amp": False}
    step |= {"train_input_grad": False, "train_deterministic": False}
    rows = pd.DataFrame(
        [
            step | {"train_model_mode": "train"},
            step | {"train_model_mode": "eval"},
            step | {"train_model_mode": None},  # written before the column: eval
            step | {"train_model_mode": "eval", "train_optimizer": "adam"},
            {k: v for k, v in step.items() if not k.startswith("train_")} | {"direction": "forward"},
        ]
    )
    v = settings.values(rows)
    assert v["train_model_mode"].tolist() == ["train", "eval", "eval", "eval", settings.ANY]
    assert v.loc[4, list(TRAINING)].eq(settings.ANY).all()  # a forward row: every value holds
    ids = settings.identity(rows)
    assert ids[0] != ids[1] == ids[2] != ids[3]
    groups = settings.groups(rows)
    assert len(groups) == 3 and all(g.mask(rows)[4] for g in groups)  # the forward row is in each


def test_a_row_measured_with_the_setting_wins_over_one_it_does_not_apply_to(tmp_path: Path):
    """winograd unsupported under fallback=none (later), ok with layers run by torch under fallback=torch: in
    the fallback=torch setting the latter is the measurement."""
    common = {"algo": "winograd", "device": "cuda", "cuda_graph": True, "cpu_threads": 8}
    write_points(
        tmp_path / "r",
        [
            point_row(224, 2.0, run="torch-fallback", at=0, fallback_policy="torch", algo_fallback_layers=4, **common),
            point_row(
                224,
                None,
                run="none",
                at=1,
                status="unsupported",
                fallback_policy="none",
                algo_fallback_layers=0,
                **common,
            ),
        ],
    )
    res = load(tmp_path / "r")
    assert sorted(res.points["run_id"]) == ["none", "torch-fallback"]  # neither replaced the other
    ((setting, part),) = by_setting(res)
    assert part.points["run_id"].tolist() == ["torch-fallback"] and setting.fixed()["fallback_policy"] == "torch"


def test_rows_whose_settings_apply_in_different_places_are_one_setting():
    """A sweep with fallback=torch (winograd fell back on some layers), then a plan run with fallback=none (no
    layer fell back): neither setting contradicts the other, so they are compared (README: Per-layer plans)."""
    common = {"status": "ok", "device": "cpu", "backend": "reference", "cpu_threads": 2}
    rows = pd.DataFrame(
        [
            common | {"algo": "winograd", "fallback_policy": "torch", "algo_fallback_layers": 3, "plan_hash": None},
            common | {"algo": "gemm", "fallback_policy": "torch", "algo_fallback_layers": 0, "plan_hash": None},
            common | {"algo": "per_layer", "fallback_policy": "none", "algo_fallback_layers": 0, "plan_hash": "abc"},
            common
            | {
                "algo": "torch",
                "fallback_policy": "torch",
                "algo_fallback_layers": 0,
                "plan_hash": None,
                "backend": "torch",
            },
        ]
    )
    (only,) = settings.groups(rows)
    assert (
        only.fixed()
        == {"device": "cpu", "backend": "reference", "fallback_policy": "torch", "plan_hash": "abc", "cpu_threads": "2"}
        and only.mask(rows).all()
    )
    other_threads = pd.concat([rows, rows.assign(cpu_threads=4)], ignore_index=True)
    assert [g.label for g in settings.groups(other_threads)] == ["cpu_threads=2", "cpu_threads=4"]


def test_the_load_gives_its_frame_as_read_to_the_setting_chosen(acceptance_like: Path, monkeypatch):
    """A settings filter keeps the layer rows of the points it kept: the load gives its frame as read to
    resolve.layers_of(consume=True), which takes them from it a column at a time (tests/analysis/test_scale.py)."""
    from analysis.tree import loader

    consumed = []
    monkeypatch.setattr(loader, "layers_of", lambda p, lay, consume=False: consumed.append(consume) or lay)
    load(acceptance_like, Filters(graph=("true",), math=("fma",), fallback=("none",)))
    assert consumed == [True]
