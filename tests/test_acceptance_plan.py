"""The acceptance command's plan and budget, the jobs' overrides, and their composition (Hydra and plain YAML)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import acceptance as acc
from harness.acceptance import (
    Job,
)

# ---- plan -----------------------------------------------------------------------------------------------------


def test_the_core_suite_covers_every_algorithm_cudnn_runs_and_fits_a_lease():
    plan = acc.make_plan(quick=False)
    assert "direct" not in plan.algos and {"torch", "find", "guess"} <= set(plan.algos) and len(plan.algos) == 10
    assert set(plan.models) == {"vgg16", "resnet50"} and plan.sizes == (224,)
    assert len(plan.sweep_jobs()) == 2 * 10 * 3 and plan.points() == 60
    assert {c.label for c in plan.configs} == {
        "float32 fma fallback=none",
        "float32 fma fallback=torch",
        "float32 tensor_op fallback=none",
    }
    assert acc.estimate_s(plan) < acc.DEFAULT_BUDGET_S
    quick = acc.make_plan(quick=True)
    assert len(quick.models) == len(quick.sizes) == 1 and quick.points() == 30
    assert acc.estimate_s(quick) < acc.estimate_s(plan)
    # the "same point again" run repeats a point that both sweeps measure
    repeat = next(j for j in acc.extra_jobs(acc.make_plan(False)) if j.phase == "repeat")
    for p in (plan, quick):
        assert any(
            j.model == repeat.model
            and j.algo == repeat.algo
            and j.config == repeat.config
            and set(repeat.sizes) <= set(j.sizes)
            for j in p.sweep_jobs()
        )


def test_the_suites_in_order_of_value_each_with_its_runs():
    assert acc.SUITE_ORDER == ("core", "regimes", "energy", "training")
    regimes = acc.SUITES["regimes"].sweep(False)
    assert set(regimes.models) == {"resnet50", "vgg16"} and regimes.batches == (1, 32, 256)
    assert set(regimes.algos) == {"guess", "torch", "implicit_precomp_gemm", "winograd_nonfused", "fft_tiling"}
    grid = {(c.dtype, c.math, c.layout) for c in regimes.configs}
    assert grid == {
        (d, m, layout)
        for d, m in (("float32", "fma"), ("float32", "tensor_op"), ("float16", "tensor_op"), ("bfloat16", "tensor_op"))
        for layout in ("nchw", "nhwc")
    }
    assert regimes.configs[0] == acc.Config("float16", "tensor_op", "none", "nhwc")  # the most valuable first
    assert regimes.points() == 2 * 5 * 8 * 3
    jobs = regimes.sweep_jobs()
    assert [j.config for j in jobs[:10]] == [regimes.configs[0]] * 10  # configuration by configuration
    assert "layout=nhwc" in jobs[0].overrides(Path("r")) and "batch_size=[1,32,256]" in jobs[0].overrides(Path("r"))
    assert (
        not any(o.startswith("layout=") for o in jobs[-1].overrides(Path("r"))) or regimes.configs[-1].layout != "nchw"
    )
    energy = acc.SUITES["energy"]
    assert energy.sweep(False).points() == 0 and {j.phase for j in energy.extras(energy.sweep(False), False)} == {
        "energy"
    }
    assert not acc.SUITES["regimes"].gpu_tests and acc.SUITES["core"].gpu_tests
    for name in acc.SUITE_ORDER:  # each suite fits a lease in its quick form; the full regimes is cut by its budget
        suite = acc.SUITES[name]
        assert acc.estimate_s(suite.sweep(True), suite, True) < acc.DEFAULT_BUDGET_S, name


def test_each_job_sets_each_key_once_with_short_points(tmp_path: Path):
    for job in [*acc.make_plan(False).sweep_jobs(), *acc.extra_jobs(acc.make_plan(False))]:
        overrides = job.overrides(tmp_path / "results")
        keys = [o.split("=", 1)[0] for o in overrides]
        assert len(keys) == len(set(keys)), overrides
        assert {
            "stage=sanity",
            "stage.max_iters=300",
            "stage.target_ci_rel=0.01",
            "stage.verify_every_point=true",
            "gpu=local",
            "device=cuda",
        } <= set(overrides)
    oom = next(j for j in acc.extra_jobs(acc.make_plan(False)) if j.phase == "oom")
    energy = acc.energy_jobs(quick=False)[0]
    assert "stage.energy_window_s=5" in energy.overrides(tmp_path) and "remeasure=true" in energy.overrides(tmp_path)
    assert "batch_size=[1,16384]" in oom.overrides(tmp_path) and oom.points() == 2


@pytest.mark.parametrize("results", ["/tmp/acceptance-20250101T000000Z/results", "/tmp/a folder/it's here"])
def test_composition_without_hydra_equals_hydras(results: str):
    for job in [acc.make_plan(False).sweep_jobs()[-1], *acc.extra_jobs(acc.make_plan(False))]:
        overrides = job.overrides(Path(results))
        assert acc.compose_plain(overrides) == acc.compose_config(overrides)


def test_jobs_become_the_specs_they_describe(tmp_path: Path):
    oom = acc.prepare_job(next(j for j in acc.extra_jobs(acc.make_plan(False)) if j.phase == "oom"), tmp_path / "r")
    spec = oom.spec
    assert (spec.model.name, spec.algo, spec.stage.sizes, spec.batch_sizes) == ("vgg16", "torch", (224,), (1, 16384))
    assert (spec.device, spec.dtype, spec.math, spec.fallback, spec.remeasure) == (
        "cuda",
        "float32",
        "fma",
        "none",
        True,
    )
    assert (spec.stage.min_iters, spec.stage.max_iters, spec.stage.max_time_s, spec.stage.layer_iters) == (
        10,
        300,
        3.0,
        8,
    )
    assert spec.stage.energy_window_s == 0 and spec.stage.verify_every_point and spec.results_dir == tmp_path / "r"
    assert oom.record.command.startswith("python -m harness ") and "model=vgg16" in oom.record.command
    half = acc.prepare_job(
        Job("sweep", "alexnet", "winograd", (128, 224), acc.Config("float16", "tensor_op", "none")), tmp_path / "r"
    ).spec
    assert (half.dtype, half.math, half.stage.sizes, half.batch_sizes) == ("float16", "tensor_op", (128, 224), (1,))


# ---- the GPU test suite ------------------------------------------------------------------------------------------
