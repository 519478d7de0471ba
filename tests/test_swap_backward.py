"""A swapped model's backward pass: each direction runs the algorithm chosen for it, and only where needed.

The model is small on purpose (a 3x3 layer, a strided grouped layer, a 1x1 layer without bias): every
gradient of the swapped model is compared with the unswapped model's, computed by torch's autograd.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.algorithms import plan as plans
from harness.algorithms import swap
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.memory_layout import in_layout, model_to_layout, to_layout
from harness.algorithms.swap import AlgoConv2d, UnsupportedLayer
from harness.errors import ConfigError

DIRECTIONS = ("forward", "backward_data", "backward_filter")


def small_model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),  # 3x3, stride 1: every reference algorithm runs it
        nn.ReLU(),
        nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=2),  # stride 2, groups 2
        nn.ReLU(),
        nn.Conv2d(8, 6, 1, bias=False),  # 1x1, no bias: winograd F(2x2,3x3) cannot run it
    )


def gradients(model: nn.Module, x: torch.Tensor, *, input_grad: bool = True) -> dict[str, torch.Tensor | None]:
    """The input's and every parameter's gradient for a fixed, non-uniform upstream gradient."""
    model.zero_grad(set_to_none=True)
    x = x.detach().requires_grad_(input_grad)
    y = model(x)
    y.backward(torch.linspace(-1.0, 1.0, y.numel()).reshape(y.shape))
    return {"input": x.grad, **{name: p.grad for name, p in model.named_parameters()}}


def assert_same_gradients(got: dict, expected: dict) -> None:
    assert got.keys() == expected.keys()
    for name, e in expected.items():
        if e is None:
            assert got[name] is None, name
            continue
        scale = float(e.abs().max())
        torch.testing.assert_close(got[name], e, rtol=1e-4, atol=1e-4 * scale, msg=lambda m, n=name: f"{n}: {m}")


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(2, 3, 10, 10, generator=torch.Generator().manual_seed(1))


def count_runner_calls(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts each (layer's output channels, direction) runner call the autograd function really makes."""
    calls: Counter = Counter()
    real = AlgoConv2d.runner_to_call

    def spy(self: AlgoConv2d, x: torch.Tensor, direction: str):  # type: ignore[no-untyped-def]
        run = real(self, x, direction)

        def counted(*args: torch.Tensor) -> torch.Tensor:
            calls[(self.out_channels, direction)] += 1
            return run(*args)

        return counted

    monkeypatch.setattr(AlgoConv2d, "runner_to_call", spy)
    return calls


def plans_of(s, name: str) -> dict[str, object]:
    """Layer ``name``'s plan in each direction it planned (one input shape in these tests)."""
    return {d: p for d, by_key in s.swapped[name].plans_by_direction.items() for p in by_key.values()}


@pytest.mark.parametrize("algo", ["direct", "gemm", "fft", "winograd"])
def test_each_reference_algorithm_in_every_direction_gives_torchs_gradients(x, algo):
    model = small_model()
    expected = gradients(model, x)
    with swap(model, algo, backend="reference", fallback="torch") as s:
        got = gradients(model, x)
        planned = {name: plans_of(s, name) for name in s.swapped}
    assert_same_gradients(got, expected)
    for name, by_direction in planned.items():
        assert list(by_direction) == list(DIRECTIONS), name
        for direction, plan in by_direction.items():
            assert (plan.direction, plan.algo_requested) == (direction, algo)
            if algo == "winograd" and name != "0":  # stride 2, and 1x1: F(2x2,3x3) cannot run them
                assert (plan.status, plan.algo_used, plan.backend) == ("fallback", "torch", "torch")
                assert "winograd F(2x2,3x3) needs kernel 3x3, stride 1" in plan.detail
            else:
                assert (plan.status, plan.algo_used, plan.backend) == ("ok", algo, "reference"), (name, direction)


def test_a_choice_per_direction_runs_each_directions_algorithm(x):
    model = small_model()
    expected = gradients(model, x)
    choice = {
        "0": {"forward": "winograd", "backward_data": "fft", "backward_filter": "gemm"},
        "2": {"forward": "gemm", "backward_data": "direct", "backward_filter": "fft"},
        "4": {"forward": "fft", "backward_data": "gemm", "backward_filter": "direct"},
    }
    with swap(model, choice, backend="reference") as s:
        got = gradients(model, x)
        used = {name: {d: p.algo_used for d, p in plans_of(s, name).items()} for name in choice}
        assert all(p.status == "ok" for name in choice for p in plans_of(s, name).values())
    assert_same_gradients(got, expected)
    assert used == choice


def test_a_channels_last_model_gets_its_gradients_in_nhwc(x):
    model = model_to_layout(small_model(), "nhwc")
    x = to_layout(x, "nhwc")
    expected = gradients(model, x)
    choice = {"forward": "gemm", "backward_data": "fft", "backward_filter": "direct"}
    with swap(model, dict.fromkeys(("0", "2", "4"), choice), backend="reference", layout="nhwc"):
        got = gradients(model, x)
    assert_same_gradients(got, expected)
    assert in_layout(got["input"], "nhwc")


def test_an_unsupported_direction_falls_back_per_direction_with_the_reason(x):
    """winograd on the 1x1 layer: unsupported in each backward direction; fallback=torch runs torch's gradient
    there and records why, while the forward runs the algorithm asked for."""
    model = small_model()
    expected = gradients(model, x)
    choice = {"forward": "gemm", "backward_data": "winograd", "backward_filter": "winograd"}
    with swap(model, {"4": choice}, backend="reference", fallback="torch") as s:
        got = gradients(model, x)
        planned = plans_of(s, "4")
    assert_same_gradients(got, expected)
    assert (planned["forward"].status, planned["forward"].algo_used) == ("ok", "gemm")
    for direction in ("backward_data", "backward_filter"):
        plan = planned[direction]
        assert (plan.direction, plan.algo_requested, plan.algo_used, plan.backend, plan.status) == (
            direction,
            "winograd",
            "torch",
            "torch",
            "fallback",
        )
        assert plan.detail.endswith("this layer has kernel 1x1, stride 1x1, dilation 1x1")


@pytest.mark.parametrize("unsupported", ["backward_data", "backward_filter"])
def test_fallback_none_raises_naming_the_direction(x, unsupported):
    model = small_model()
    choice = {"forward": "gemm", "backward_data": "gemm", "backward_filter": "gemm", unsupported: "winograd"}
    with swap(model, {"4": choice}, backend="reference", fallback="none") as s:
        model(x).sum()  # the forward runs: only the backward direction cannot
        with pytest.raises(UnsupportedLayer, match=rf"winograd cannot run this layer \({unsupported}\): winograd F"):
            gradients(model, x)
        assert plans_of(s, "4")[unsupported].status == "unsupported"
        assert s.swapped["4"].runner(torch.zeros(2, 8, 5, 5), unsupported) is None


def test_torch_in_the_backward_directions_gives_torchs_gradients_and_records_each_directions_plan(x):
    model = small_model()
    expected = gradients(model, x)
    with swap(model, {"0": {"forward": "gemm"}, "2": "torch", "4": {"forward": "fft"}}, backend="reference") as s:
        assert set(s.swapped) == {"0", "4"}  # torch in every direction: not swapped
        assert s.swapped["0"].algos == {"forward": "gemm", "backward_data": "torch", "backward_filter": "torch"}
        got = gradients(model, x)
        layer = s.swapped["4"]
        planned = {d: next(iter(layer.plans_by_direction[d].values())) for d in DIRECTIONS}
    assert_same_gradients(got, expected)
    assert [(p.direction, p.algo_used, p.backend, p.status) for p in planned.values()] == [
        ("forward", "fft", "reference", "ok"),
        ("backward_data", "torch", "torch", "ok"),
        ("backward_filter", "torch", "torch", "ok"),
    ]
    assert layer.plans is layer.plans_by_direction["forward"]  # the forward's, keyed as before


def test_each_gradient_is_computed_only_where_autograd_needs_it(x, monkeypatch):
    calls = count_runner_calls(monkeypatch)
    model = small_model()
    model[2].weight.requires_grad_(False)
    with swap(model, {"0": "gemm", "2": "direct", "4": "fft"}, backend="reference"):
        got = gradients(model, x, input_grad=False)
    assert calls == {
        (8, "forward"): 2,  # layers 0 and 2 (both 8 output channels)
        (6, "forward"): 1,
        (8, "backward_data"): 1,  # layer 2's only: layer 0's input needs no gradient
        (6, "backward_data"): 1,
        (8, "backward_filter"): 1,  # layer 0's only: layer 2's weight is frozen
        (6, "backward_filter"): 1,
    }
    assert got["input"] is None and got["2.weight"] is None
    assert got["2.bias"] is not None and got["0.weight"] is not None
    calls.clear()
    with torch.no_grad(), swap(model, "gemm", backend="reference"):
        model(x)
    assert set(calls) == {(8, "forward"), (6, "forward")}  # no gradient, no backward


def test_an_unknown_direction_is_refused_naming_the_valid_ones(x):
    with pytest.raises(ValueError, match="unknown direction 'fwd'; valid: forward, backward_data, backward_filter"):
        swap(small_model(), {"0": {"fwd": "gemm"}}, backend="reference")
    s = swap(small_model(), "gemm", backend="reference")
    with pytest.raises(ValueError, match="unknown direction 'sideways'; valid: forward, backward_data"):
        s.swapped["0"].plan(x, "sideways")


def test_plan_step_plans_every_direction_a_step_runs_and_leaves_the_model_as_it_was(x):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 1))
    model[3].weight.grad = torch.ones_like(model[3].weight)
    stats = model[1].running_mean.clone(), int(model[1].num_batches_tracked)
    with swap(model, {"0": {"forward": "gemm"}, "3": {"backward_filter": "fft"}}, backend="reference") as s:
        planned = s.plan_step(x)
        assert set(planned["0"]) == {"forward", "backward_filter"}  # the input needs no gradient
        assert set(planned["3"]) == set(DIRECTIONS)
        assert planned["3"]["backward_filter"].algo_used == "fft" and planned["3"]["forward"].algo_used == "torch"
        assert s.swapped["0"].plans_by_direction["backward_filter"] and not s.swapped["0"].planning
        again = s.plan_step(x, input_grad=True)
    assert set(again["0"]) == set(DIRECTIONS)
    assert torch.equal(model[3].weight.grad, torch.ones_like(model[3].weight)) and model[0].weight.grad is None
    assert torch.equal(model[1].running_mean, stats[0]) and int(model[1].num_batches_tracked) == stats[1]


@pytest.mark.parametrize("algo", ["fft", "winograd"])
def test_weight_transforms_are_made_again_after_an_optimizer_step(x, algo):
    """The reference FFT and Winograd transform the kernels when their runners are built: after the weights
    change (an optimizer step), the next call rebuilds the runner from the new weights, in every direction, so
    the second step's gradients are still torch's."""
    model = small_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    with swap(model, {"0": algo}, backend="reference") as s:
        for _ in range(2):
            got = gradients(model, x)
            with s.original():
                expected = gradients(model, x)
            assert_same_gradients(got, expected)
            optimizer.step()


def test_autocast_is_refused_rather_than_run_in_another_dtype(x):
    model = small_model()
    with swap(model, "gemm", backend="reference"), torch.autocast("cpu", dtype=torch.bfloat16):
        with pytest.raises(ConfigError, match="not under torch.autocast"):
            model(x)


# -- training plans ------------------------------------------------------------------------------------------


def training_plan(model: nn.Module, choices: dict[str, dict[str, str]]) -> plans.Plan:
    layers = tuple(
        plans.PlanLayer(
            name,
            ConvGeometry.of(conv),
            choices[name]["forward"],
            "measured",
            algo_backward_data=choices[name]["backward_data"],
            algo_backward_filter=choices[name]["backward_filter"],
        )
        for name, conv in plans.conv_layers(model)
    )
    return plans.Plan(plans.PlanKey("small", backend="reference"), layers)


def test_a_training_plan_round_trips_through_its_file_and_drives_swap(tmp_path: Path, x):
    model = small_model()
    choices = {
        "0": {"forward": "gemm", "backward_data": "fft", "backward_filter": "winograd"},
        "2": {"forward": "torch", "backward_data": "torch", "backward_filter": "torch"},
        "4": {"forward": "fft", "backward_data": "torch", "backward_filter": "direct"},
    }
    plan = training_plan(model, choices)
    path = plans.write(plan, tmp_path / "train.json")
    d = json.loads(path.read_text())
    assert d["version"] == plans.TRAINING_VERSION == 2
    assert d["layers"][0]["algo"] == "gemm" and d["layers"][0]["algo_backward_filter"] == "winograd"
    again = plans.read(path)
    assert again == plan and again.is_training and again.digest() == plan.digest() == d["plan_hash"]
    assert again.choice() == choices
    assert again.algorithms() == ("gemm", "fft", "winograd", "torch", "direct")
    forward_only = plans.Plan(
        plan.key, tuple(la.__class__(la.name, la.geometry, la.algo, la.source) for la in plan.layers)
    )
    assert forward_only.digest() != plan.digest()  # what runs backward is part of what the hash covers
    expected = gradients(model, x)
    with swap(model, again, backend="reference") as s:
        assert set(s.swapped) == {"0", "4"} and s.swapped["4"].algos == choices["4"]
        got = gradients(model, x)
        used = {name: {d: p.algo_used for d, p in plans_of(s, name).items()} for name in s.swapped}
    assert used == {"0": choices["0"], "4": choices["4"]}
    assert_same_gradients(got, expected)


def test_a_forward_plan_is_written_and_read_as_before(tmp_path: Path):
    model = small_model()
    layers = tuple(plans.PlanLayer(n, ConvGeometry.of(c), "gemm", "measured") for n, c in plans.conv_layers(model))
    plan = plans.Plan(plans.PlanKey("small"), layers)
    d = plan.to_dict()
    assert d["version"] == 1 and not any(k.startswith("algo_") for la in d["layers"] for k in la)
    assert plans.read(plans.write(plan, tmp_path / "p.json")).choice() == {"0": "gemm", "2": "gemm", "4": "gemm"}
    assert list(plans.csv_columns(plan)) == list(plans.CSV_COLUMNS)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(version=1), 'has "algo_backward_data" and "algo_backward_filter", which only a version-2'),
        (lambda d: d["layers"][1].pop("algo_backward_filter"), 'a training plan\'s layer needs "algo_backward_data"'),
        (lambda d: d["layers"][2].update(algo_backward_data="magic"), "unknown algo_backward_data 'magic'; valid:"),
        (lambda d: d.update(version=3), "plan version 3; this harness reads versions 1 \\(forward\\) and 2"),
    ],
)
def test_a_malformed_training_plan_is_refused_saying_what_is_wrong(tmp_path: Path, edit, message):
    model = small_model()
    d = training_plan(model, dict.fromkeys(("0", "2", "4"), dict.fromkeys(DIRECTIONS, "gemm"))).to_dict()
    edit(d)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(d))
    with pytest.raises(plans.PlanError, match=message):
        plans.read(path)


@pytest.mark.parametrize("algo", ["gemm", "fft"])
def test_a_resnet18_training_step_on_the_references_gives_torchs_gradients_and_plans_nothing_when_run(algo):
    """Forward, cross-entropy, backward and an SGD step with momentum, twice, on resnet18 swapped in every
    direction: after ``plan_step`` the steps plan nothing more, and each step's gradients are torch's."""
    from harness.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18")
    x, target = torch.randn(2, 3, 32, 32), torch.tensor([3, 7])
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def grads() -> dict[str, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), target).backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    with swap(model, algo, backend="reference", fallback="torch") as s:
        planned = s.plan_step(x)
        count = sum(len(by_key) for m in s.swapped.values() for by_key in m.plans_by_direction.values())
        assert set(planned["conv1"]) == {"forward", "backward_filter"}  # the input needs no gradient
        assert all(set(by) == set(DIRECTIONS) for name, by in planned.items() if name != "conv1")
        for _ in range(2):
            got = grads()
            with s.original():
                expected = grads()
            assert_same_gradients(got, expected)
            optimizer.step()
        assert sum(len(by_key) for m in s.swapped.values() for by_key in m.plans_by_direction.values()) == count
