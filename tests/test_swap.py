"""Swapping a model's conv layers: outputs match the baseline, undo restores it, fallbacks are recorded."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from harness.algorithms import canonical_name, swap
from harness.algorithms.memory_layout import in_layout, model_to_layout, to_layout
from harness.algorithms.swap import AlgoConv2d, UnsupportedLayer
from harness.errors import ConfigError
from harness.models import build_model, min_input_size

SEED_MODELS = ["vgg16", "densenet121", "resnet152", "googlenet", "alexnet", "resnet50"]


@pytest.mark.slow
@pytest.mark.parametrize("model_name", SEED_MODELS)
def test_seed_models_swapped_with_each_cpu_algorithm_match_the_baseline(model_name: str):
    torch.manual_seed(0)
    model = build_model(model_name)
    size = max(32, min_input_size(model_name))
    x = torch.randn(1, 3, size, size)
    with torch.inference_mode():
        expected = model(x)
        for algo in ("direct", "gemm", "fft", "winograd"):
            with swap(model, algo, backend="reference", fallback="torch") as s:
                got = model(x)
                statuses = {p.status for m in s.swapped.values() for p in m.plans.values()}
            assert statuses <= {"ok", "fallback"} and "ok" in statuses
            torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3 * float(expected.abs().max()))
    assert all(type(m) is nn.Conv2d for m in model.modules() if isinstance(m, (nn.Conv2d, AlgoConv2d)))


@pytest.mark.parametrize("model_name", ["resnet18", "vgg11"])
def test_a_channels_last_model_swapped_with_each_cpu_algorithm_computes_in_nhwc(model_name: str):
    """layout=nhwc on the reference backend: every swapped layer gets and returns channels_last tensors (its
    NHWC implementation: nothing converts between layers), and the output matches torch's in FP32."""
    torch.manual_seed(0)
    model = model_to_layout(build_model(model_name), "nhwc")
    x = to_layout(torch.randn(1, 3, 32, 32), "nhwc")
    seen: list[tuple[bool, bool]] = []
    with torch.inference_mode():
        expected = model(x)
        for algo in ("direct", "gemm", "fft", "winograd"):
            with swap(model, algo, backend="reference", fallback="torch", layout="nhwc") as s:
                hooks = [
                    m.register_forward_hook(
                        lambda m, a, y: seen.append((in_layout(a[0], "nhwc"), in_layout(y, "nhwc")))
                    )
                    for m in s.swapped.values()
                ]
                got = model(x)
                for h in hooks:
                    h.remove()
                statuses = {p.status for m in s.swapped.values() for p in m.plans.values()}
                assert all(m.layout == "nhwc" for m in s.swapped.values())
            assert statuses <= {"ok", "fallback"} and "ok" in statuses
            torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3 * float(expected.abs().max()))
    assert seen and all(x_in and y_out for x_in, y_out in seen)


def test_swap_refuses_an_unknown_layout():
    with pytest.raises(ValueError, match="unknown layout 'nwhc'; valid: nchw, nhwc"):
        swap(nn.Sequential(nn.Conv2d(3, 4, 3)), "gemm", backend="reference", layout="nwhc")


def test_swap_shares_parameters_and_undo_restores_the_original_modules():
    model = build_model("resnet18")
    before = dict(model.named_modules())
    s = swap(model, "gemm", backend="reference")
    assert isinstance(model.conv1, AlgoConv2d) and isinstance(model.layer1[0].conv2, AlgoConv2d)
    assert model.conv1.weight is before["conv1"].weight  # shared, not copied
    assert sum(p.numel() for p in model.parameters()) == 11_689_512
    s.undo()
    assert dict(model.named_modules()) == before


def test_per_layer_mapping_swaps_only_the_named_layers():
    model = build_model("resnet18")
    s = swap(model, {"conv1": "fft", "layer1.0.conv1": "winograd", "layer1.0.conv2": "torch"}, backend="reference")
    assert set(s.swapped) == {"conv1", "layer1.0.conv1"}
    assert model.conv1.algo == "fft" and model.layer1[0].conv1.algo == "winograd"
    assert type(model.layer1[0].conv2) is nn.Conv2d
    with pytest.raises(ValueError, match="not conv layers of this model: \\['fc'\\]"):
        swap(build_model("resnet18"), {"fc": "gemm"}, backend="reference")


def test_fallback_none_raises_outside_planning_and_planning_finds_every_unsupported_layer():
    model = build_model("resnet18")
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode(), swap(model, "winograd", backend="reference", fallback="none") as s:
        with pytest.raises(UnsupportedLayer, match="winograd cannot run this layer"):
            model(x)
        with s.planning():
            model(x)  # goes through, with torch's convolution where nothing else can run
        plans = {name: next(iter(m.plans.values())) for name, m in s.swapped.items()}
    unsupported = {n for n, p in plans.items() if p.status == "unsupported"}
    assert unsupported == {
        "conv1",
        "layer2.0.conv1",
        "layer2.0.downsample.0",
        "layer3.0.conv1",
        "layer3.0.downsample.0",
        "layer4.0.conv1",
        "layer4.0.downsample.0",
    }
    assert plans["layer1.0.conv1"] == plans["layer1.0.conv1"].__class__("winograd", "winograd", "reference", "ok")


def test_fallback_torch_records_what_ran():
    model = build_model("resnet18")
    with torch.inference_mode(), swap(model, "winograd", backend="reference", fallback="torch") as s:
        model(torch.randn(1, 3, 32, 32))
        conv1 = next(iter(s.swapped["conv1"].plans.values()))
    assert (conv1.algo_requested, conv1.algo_used, conv1.backend, conv1.status) == (
        "winograd",
        "torch",
        "torch",
        "fallback",
    )
    assert "kernel 7x7" in conv1.detail


def test_plans_are_per_input_shape():
    model = build_model("resnet18")
    with torch.inference_mode(), swap(model, "fft", backend="reference") as s:
        model(torch.randn(1, 3, 32, 32))
        model(torch.randn(2, 3, 40, 40))
        assert len(s.swapped["conv1"].plans) == 2


def test_bad_swap_arguments():
    with pytest.raises(ValueError, match="fallback"):
        swap(build_model("resnet18"), "gemm", backend="reference", fallback="maybe")
    with pytest.raises(ValueError, match="backend"):
        swap(build_model("resnet18"), "gemm", backend="tpu")


def test_algorithm_aliases_of_the_old_system():
    assert canonical_name("implicit precomp gemm") == "implicit_precomp_gemm"
    assert canonical_name("Winograd Nonfused") == "winograd_nonfused"
    assert canonical_name("fft-tiling") == "fft_tiling"
    with pytest.raises(ConfigError, match="valid choices: implicit_gemm"):
        canonical_name("cudnn magic")
