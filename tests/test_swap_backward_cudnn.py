"""A model swapped onto cuDNN, forward and backward, on the CPU: the fake library of test_cudnn_backward.py
stands in at the cuDNN border and computes what cuDNN would (through torch.nn.grad) from the pointers and
descriptors it is given, so what is ours runs for real: which plan each direction builds, which algorithm
it names, the fallback per direction, and that the gradients land where autograd wants them.
"""

from __future__ import annotations

import ctypes
from types import SimpleNamespace

import pytest
import torch

from harness.algorithms import cudnn, swap
from harness.algorithms.swap import UnsupportedLayer
from tests.test_cudnn_backward import FakeCudnn
from tests.test_swap_backward import DIRECTIONS, assert_same_gradients, gradients, plans_of, small_model


@pytest.fixture
def x() -> torch.Tensor:
    return torch.randn(2, 3, 10, 10, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCudnn:
    """The computing fake library, a handle, a workspace allocator, and no CUDA stream or synchronization."""
    lib = FakeCudnn()
    monkeypatch.setattr(cudnn, "library", lambda: lib)
    monkeypatch.setattr(cudnn, "handle_for", lambda device: cudnn.Handle(lib, ctypes.c_void_p(1)))
    monkeypatch.setattr(cudnn, "WORKSPACES", cudnn.Workspaces(lambda n, device: torch.empty(n, dtype=torch.uint8)))
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: SimpleNamespace(cuda_stream=0))
    return lib


def test_every_direction_runs_on_cudnn_with_the_registrys_enum_and_gives_torchs_gradients(x, fake):
    model = small_model()
    expected = gradients(model, x)
    choice = {"forward": "implicit_gemm", "backward_data": "gemm", "backward_filter": "implicit_precomp_gemm"}
    with swap(model, dict.fromkeys(("0", "2", "4"), choice), backend="cudnn") as s:
        got = gradients(model, x)
        planned = {name: plans_of(s, name) for name in s.swapped}
    assert_same_gradients(got, expected)
    for name, by_direction in planned.items():
        assert list(by_direction) == list(DIRECTIONS), name
        assert [(p.algo_requested, p.algo_used, p.backend, p.status) for p in by_direction.values()] == [
            ("implicit_gemm", "implicit_gemm", "cudnn", "ok"),
            ("gemm", "algo_0", "cudnn", "ok"),  # cuDNN's name of the enum that ran
            ("implicit_precomp_gemm", "algo_3", "cudnn", "ok"),
        ]
        # cudnn_ops.h documents backward-data ALGO_0 and backward-filter ALGO_3 as non-deterministic
        assert [p.nondeterministic for p in by_direction.values()] == [False, True, True]
    runs = [c[0] for c in fake.calls if c[0].startswith("cudnnConvolution") and "Workspace" not in c[0]]
    assert "cudnnConvolutionBackwardData" in runs and "cudnnConvolutionBackwardFilter" in runs


def test_fallback_guess_asks_the_directions_heuristic_and_records_why(x, fake):
    """backward_filter WINOGRAD is documented as not implemented: fallback=guess runs what that direction's
    _v7 heuristic offers (here ALGO_1), and the plan says why it fell back."""
    fake.heuristic = {"backward_filter": [(1, 0, 0.1, 1)]}  # (enum, status, ms, CUDNN_DETERMINISTIC)
    model = small_model()
    expected = gradients(model, x)
    choice = {"forward": "winograd", "backward_data": "winograd", "backward_filter": "winograd"}
    with swap(model, {"0": choice}, backend="cudnn", fallback="guess") as s:
        got = gradients(model, x)
        planned = plans_of(s, "0")
    assert_same_gradients(got, expected)
    assert [(p.algo_used, p.status) for p in planned.values()] == [
        ("winograd", "ok"),
        ("winograd", "ok"),
        ("algo_1", "fallback"),
    ]
    assert "WINOGRAD is documented as not implemented" in planned["backward_filter"].detail


# -- decided before cuDNN is asked ---------------------------------------------------------------------------


@pytest.fixture
def no_cudnn(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A cuDNN that must not be called: the decisions below are cudnn_backward.enum_for's (the registry's),
    made before the library is asked."""
    asked: list[str] = []
    monkeypatch.setattr(cudnn, "library", lambda: asked.append("library"))
    monkeypatch.setattr(cudnn, "handle_for", lambda device: cudnn.Handle(None, ctypes.c_void_p(1)))
    return asked


def test_a_direction_cudnn_has_no_algorithm_for_falls_back_with_the_reason(x, no_cudnn):
    model = small_model()
    choice = {"forward": "torch", "backward_data": "implicit_precomp_gemm", "backward_filter": "torch"}
    expected = gradients(model, x)
    with swap(model, {"2": choice}, backend="cudnn", fallback="torch") as s:
        got = gradients(model, x)
        plan = plans_of(s, "2")["backward_data"]
    assert_same_gradients(got, expected)
    assert (plan.direction, plan.algo_requested, plan.algo_used, plan.backend, plan.status) == (
        "backward_data",
        "implicit_precomp_gemm",
        "torch",
        "torch",
        "fallback",
    )
    assert plan.detail == "CUDNN_STATUS_NOT_SUPPORTED: implicit_precomp_gemm has no backward_data algorithm in cuDNN"
    assert no_cudnn == []


def test_fallback_none_raises_naming_the_direction_and_planning_runs_torchs_gradient_instead(x, no_cudnn):
    model = small_model()
    expected = gradients(model, x)
    choice = {"forward": "torch", "backward_data": "torch", "backward_filter": "winograd"}
    with swap(model, {"4": choice}, backend="cudnn", fallback="none") as s:
        with pytest.raises(UnsupportedLayer, match=r"winograd cannot run this layer \(backward_filter\): .*documented"):
            gradients(model, x)
        with s.planning():
            got = gradients(model, x)
        plan = plans_of(s, "4")["backward_filter"]
    assert_same_gradients(got, expected)
    assert (plan.status, plan.algo_used) == ("unsupported", "winograd")
    assert no_cudnn == []


# -- on the GPU: cuDNN itself --------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.parametrize("algo", ["gemm", "implicit_gemm", "guess"])
def test_on_the_gpu_a_resnet18_training_step_on_cudnn_gives_torchs_gradients_and_plans_nothing_when_timed(algo):
    """Forward, cross-entropy, backward and an SGD step with momentum, twice, on resnet18 swapped onto cuDNN
    in every direction (fallback=torch where a layer cannot run it); strict FP32 on both sides (math=fma)."""
    from harness.algorithms import backend_flags
    from harness.models import build_model

    torch.manual_seed(0)
    model = build_model("resnet18").cuda()
    x = torch.randn(4, 3, 64, 64, device="cuda")
    target = torch.randint(0, 1000, (4,), device="cuda")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def grads() -> dict[str, torch.Tensor]:
        model.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), target).backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    with backend_flags("fma", False), swap(model, algo, backend="cudnn", fallback="torch", math="fma") as s:
        planned = s.plan_step(x)
        count = sum(len(by_key) for m in s.swapped.values() for by_key in m.plans_by_direction.values())
        assert all(set(by) == set(DIRECTIONS) for name, by in planned.items() if name != "conv1")
        assert set(planned["conv1"]) == {"forward", "backward_filter"}  # the input needs no gradient
        for _ in range(2):
            got = grads()
            with s.original():
                expected = grads()
            for name, e in expected.items():
                torch.testing.assert_close(got[name], e, rtol=1e-3, atol=1e-3 * float(e.abs().max()), msg=name)
            optimizer.step()
        assert sum(len(by_key) for m in s.swapped.values() for by_key in m.plans_by_direction.values()) == count
        used = {p.algo_used for by in planned.values() for p in by.values()}
    assert used - {"torch"}, f"nothing ran on cuDNN: {used}"
