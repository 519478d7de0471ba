"""Per-layer plans: the file (write, read, hash), fitting a model, running one (algo=per_layer), exporting it."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from harness.algorithms import plan as plans
from harness.algorithms import swap
from harness.algorithms.geometry import ConvGeometry
from harness.errors import ConfigError
from harness.models import build_model, meta_model
from harness.run import runner
from tests.helpers import make_spec

TINY = ["stage.sizes=[32]", "stage.warmup_iters=1", "stage.min_iters=3", "stage.max_iters=3", "stage.layer_iters=1"]


def mixed_plan(model: str = "resnet18", **key: object) -> plans.Plan:
    """winograd on the 3x3 stride-1 layers, torch on the stem, gemm elsewhere: a real mix on the CPU."""
    layers = []
    for i, (name, conv) in enumerate(plans.conv_layers(meta_model(model, {}))):
        g = ConvGeometry.of(conv)
        algo = "torch" if i == 0 else "winograd" if g.kernel == (3, 3) and g.stride == (1, 1) else "gemm"
        layers.append(plans.PlanLayer(name, g, algo, "measured", winner=plans.Evidence(algo, 0.1, 0.09, 0.11)))
    return plans.Plan(
        plans.PlanKey(
            model,
            **({"gpu": "local", "dtype": "float32", "input_size": 32, "batch_size": 1, "backend": "reference"} | key),
        ),
        tuple(layers),
    )


def test_round_trip_write_read_run(tmp_path: Path):
    plan = mixed_plan()
    path = plans.write(plan, tmp_path / "plan.json")
    again = plans.read(path)
    assert again == plan and again.digest() == plan.digest()
    assert json.loads(path.read_text())["plan_hash"] == plan.digest()

    spec = make_spec(tmp_path / "results", "algo=per_layer", f"plan={path}", *TINY)
    assert spec.plan == plan
    result = runner.run(spec)
    (point,) = result.points
    assert point["status"] == "ok" and point["verified"] and point["plan_hash"] == plan.digest()
    layers = pd.concat(pd.read_parquet(f) for f in result.files if f.name.startswith("layers-"))
    assert len(layers) == len(plan.layers) and (layers["algo"] == "per_layer").all()
    chosen = plan.choice()
    assert list(layers["algo_used"]) == [chosen[n] for n in layers["layer_name"]]  # every row says what ran
    assert set(layers["algo_used"]) == {"torch", "winograd", "gemm"}
    assert list(layers["algo_requested"]) == list(layers["algo_used"]) and (layers["status"] == "ok").all()
    assert layers["p50_ms"].notna().all()


def test_two_plans_are_two_measurements(tmp_path: Path):
    a = mixed_plan()
    b = dataclasses.replace(a, layers=(dataclasses.replace(a.layers[0], algo="gemm"), *a.layers[1:]))
    pa, pb = plans.write(a, tmp_path / "a.json"), plans.write(b, tmp_path / "b.json")
    assert a.digest() != b.digest()
    # the same choices made from other evidence are the same measurement
    c = dataclasses.replace(a, layers=tuple(dataclasses.replace(x, winner=None) for x in a.layers))
    assert c.digest() == a.digest()
    ha = make_spec(tmp_path, "algo=per_layer", f"plan={pa}").config_hash()
    hb = make_spec(tmp_path, "algo=per_layer", f"plan={pb}").config_hash()
    assert ha != hb
    assert "plan" not in make_spec(tmp_path, "algo=gemm").measurement_config()  # older hashes unchanged


def test_plan_of_another_geometry_is_refused_naming_the_first_mismatching_layer(tmp_path: Path):
    plan = mixed_plan()
    bad = list(plan.layers)
    bad[5] = dataclasses.replace(bad[5], geometry=dataclasses.replace(bad[5].geometry, out_channels=99))
    bad[7] = dataclasses.replace(bad[7], geometry=dataclasses.replace(bad[7].geometry, kernel=(5, 5)))
    wrong = dataclasses.replace(plan, layers=tuple(bad))
    with pytest.raises(plans.PlanMismatch, match=rf"conv layer 5 \({bad[5].name}\).*->99"):
        swap(build_model("resnet18"), wrong, backend="reference")
    path = plans.write(wrong, tmp_path / "wrong.json")
    spec = make_spec(tmp_path / "results", "algo=per_layer", f"plan={path}", *TINY)
    with pytest.raises(ConfigError, match=bad[5].name):
        runner.validate(spec)
    assert not (tmp_path / "results").exists()  # refused before anything was written
    # a plan for another model: its first layer that is not the model's
    other = plans.write(mixed_plan("resnet34"), tmp_path / "r34.json")
    with pytest.raises(
        ConfigError, match=r"conv layer 5 is layer2\.0\.conv1 in the model and layer1\.2\.conv1 in the plan"
    ):
        runner.validate(make_spec(tmp_path / "results", "algo=per_layer", f"plan={other}", *TINY))
    short = dataclasses.replace(plan, layers=plan.layers[:-1])
    with pytest.raises(plans.PlanMismatch, match=r"layer4\.1\.conv2\) is not in the plan"):
        plans.check_model(short, build_model("resnet18"))


@pytest.mark.parametrize("key", [{"dtype": "float16"}, {"gpu": "h100"}, {"input_size": 224}])
def test_plan_for_another_context_warns_and_runs(tmp_path: Path, key: dict, caplog: pytest.LogCaptureFixture):
    path = plans.write(mixed_plan(**key), tmp_path / "plan.json")
    spec = make_spec(tmp_path / "results", "algo=per_layer", f"plan={path}", *TINY)
    with caplog.at_level(logging.WARNING, logger="harness.run.runner"):
        runner.validate(spec)
    ((name, value),) = key.items()
    assert any(f"{value}" in r.getMessage() and "plan" in r.getMessage() for r in caplog.records), caplog.text


def test_the_config_border(tmp_path: Path):
    path = plans.write(mixed_plan(), tmp_path / "plan.json")
    with pytest.raises(ConfigError, match="algo=per_layer needs plan=PATH"):
        make_spec(tmp_path, "algo=per_layer")
    with pytest.raises(ConfigError, match="only with algo=per_layer"):
        make_spec(tmp_path, "algo=gemm", f"plan={path}")
    with pytest.raises(ConfigError, match="no such file"):
        make_spec(tmp_path, "algo=per_layer", f"plan={tmp_path / 'missing.json'}")
    broken = json.loads(path.read_text())
    broken["layers"][3]["algo"] = "magic"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    with pytest.raises(ConfigError, match=r"layers\[3\].*unknown algo 'magic'; valid: implicit_gemm"):
        make_spec(tmp_path, "algo=per_layer", f"plan={tmp_path / 'broken.json'}")


def test_a_plan_with_an_algorithm_the_cpu_cannot_run_is_refused(tmp_path: Path):
    plan = mixed_plan()
    gpu_only = dataclasses.replace(
        plan, layers=(dataclasses.replace(plan.layers[0], algo="fft_tiling"), *plan.layers[1:])
    )
    path = plans.write(gpu_only, tmp_path / "plan.json")
    with pytest.raises(ConfigError, match="1 layers use algo=fft_tiling exists only in cuDNN"):
        runner.validate(make_spec(tmp_path / "results", "algo=per_layer", f"plan={path}", *TINY))


def test_ai3_export_has_one_name_per_conv_layer(tmp_path: Path):
    plan = mixed_plan()
    names = plans.ai3_algorithms(plan)
    model = build_model("resnet18")
    assert len(names) == len(plans.conv_layers(model)) == 20
    assert names[0] == "guess" and set(names) == {"guess", "winograd", "gemm"}
    assert plans.ai3_algorithms(plan, torch_as="direct")[0] == "direct"
    cuda = dataclasses.replace(plan, layers=(dataclasses.replace(plan.layers[0], algo="implicit_precomp_gemm"),))
    assert plans.ai3_algorithms(cuda) == ["implicit precomp gemm"]
    csv = pd.read_csv(plans.write_csv(plan, tmp_path / "plan.csv"))
    assert list(csv["name"]) == [n for n, _ in plans.conv_layers(model)] and list(csv["algo"]) == [
        x.algo for x in plan.layers
    ]


def test_swap_takes_a_plan_from_plain_python():
    import torch

    model = build_model("resnet18")
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        expected = model(x)
        with swap(model, mixed_plan(), backend="reference") as s:
            assert set(m.algo for m in s.swapped.values()) == {"winograd", "gemm"} and "conv1" not in s.swapped
            got = model(x)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)


def test_find_is_refused_on_the_cpu(tmp_path: Path):
    with pytest.raises(ConfigError, match="algo=find exists only in cuDNN"):
        runner.validate(make_spec(tmp_path / "results", "algo=find", *TINY))


def test_a_submitted_job_reads_the_plan_by_its_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from harness.launch.submit import make_task
    from tests.helpers import compose_config

    plans.write(mixed_plan(), tmp_path / "plan.json")
    monkeypatch.chdir(tmp_path)
    task = make_task(compose_config("device=cpu", "algo=per_layer", "plan=plan.json", f"results_dir={tmp_path / 'r'}"))
    assert task.config["plan"] == str(tmp_path / "plan.json") and task.spec.plan == mixed_plan()


def test_the_command_lines_refuse_with_exit_code_2(tmp_path: Path):
    from analysis.plan import main as plan_main
    from tests.conftest import run_cli

    proc = run_cli("algo=per_layer", cwd=tmp_path)
    assert proc.returncode == 2 and "algo=per_layer needs plan=PATH" in proc.stderr
    (tmp_path / "junk.json").write_text("{}")
    assert plan_main(["show", str(tmp_path / "junk.json")]) == 2
    assert plan_main(["export", str(plans.write(mixed_plan(), tmp_path / "p.json"))]) == 2  # neither --ai3 nor --csv
    assert (
        plan_main(["make", str(tmp_path), "--model", "resnet18", "--size", "32", "--out", str(tmp_path / "x.json")])
        == 2
    )
