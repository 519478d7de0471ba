"""FLOPs, bytes and the roofline of each direction of a conv layer (harness/measure/flops_directions.py):
counted by torch's flop counter on the unswapped model, checked against the closed form by hand."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

from harness.algorithms.plan import DIRECTIONS
from harness.algorithms.swap import swap
from harness.measure import roofline
from harness.measure.flops import count_work_of
from harness.measure.flops_directions import LayerCost, count_directions, layer_costs, meta_copy
from harness.measure.layers import is_conv

BACKWARD = ("backward_data", "backward_filter")


def closed_form(conv: nn.Conv2d, in_shape: tuple[int, ...]) -> int:
    """2*N*K*(C/groups)*R*S*P*Q: the multiply-adds of every direction of one conv call, twice."""
    n, c, h, w = in_shape
    (r, s), (sh, sw), (dh, dw), (ph, pw) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
    p = (h + 2 * ph - dh * (r - 1) - 1) // sh + 1
    q = (w + 2 * pw - dw * (s - 1) - 1) // sw + 1
    return 2 * n * conv.out_channels * (c // conv.groups) * r * s * p * q


HAND_MADE = {
    "plain": dict(in_channels=4, out_channels=6, kernel_size=3, padding=1, bias=False),
    "stride2": dict(in_channels=4, out_channels=8, kernel_size=3, stride=2, padding=1, bias=False),
    "dilation": dict(in_channels=3, out_channels=5, kernel_size=3, dilation=2, padding=2, bias=False),
    "groups": dict(in_channels=8, out_channels=12, kernel_size=3, groups=4, padding=1, bias=False),
    "depthwise": dict(in_channels=6, out_channels=6, kernel_size=3, groups=6, stride=2, bias=False),
    "bias": dict(in_channels=4, out_channels=6, kernel_size=(3, 5), stride=(2, 1), padding=(1, 2), bias=True),
}


class TwoConvs(nn.Module):
    """A conv under test, behind a first conv so that its input needs a gradient without input_grad."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.first = nn.Conv2d(kwargs["in_channels"], kwargs["in_channels"], 1)  # type: ignore[arg-type]
        self.conv = nn.Conv2d(**kwargs)  # type: ignore[arg-type]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.first(x))


@pytest.mark.parametrize("case", sorted(HAND_MADE))
def test_each_direction_is_the_closed_form_on_hand_made_convs(case: str) -> None:
    model = TwoConvs(**HAND_MADE[case])
    shape = (3, HAND_MADE[case]["in_channels"], 11, 13)
    costs = layer_costs(model, torch.zeros(shape), DIRECTIONS)
    expected = closed_form(model.conv, shape)
    for direction in DIRECTIONS:
        assert costs[("conv", direction)].flops == expected, direction
    assert costs[("first", "forward")].flops == closed_form(model.first, shape)
    assert ("first", "backward_data") not in costs  # layer 0, no input_grad
    assert costs[("first", "backward_filter")].flops == closed_form(model.first, shape)


def test_grouped_backward_filter_is_corrected_from_torchs_formula() -> None:
    """torch's own formula counts a grouped conv's weight gradient `groups` times: ours must not."""
    from torch.utils.flop_counter import FlopCounterMode

    conv = nn.Conv2d(8, 8, 3, groups=8, padding=1, bias=False)
    x = torch.zeros(2, 8, 9, 9)
    with FlopCounterMode(display=False) as counter:
        conv(x).sum().backward()
    torch_weight_grad = counter.get_flop_counts()["Global"][torch.ops.aten.convolution_backward]
    ours = layer_costs(nn.Sequential(conv), x, ["backward_filter"])[("0", "backward_filter")].flops
    assert ours == closed_form(conv, tuple(x.shape))
    assert torch_weight_grad == 8 * ours  # the overcount this module corrects (input needs no gradient here)


def test_bias_gradient_is_not_counted() -> None:
    with_bias = TwoConvs(**HAND_MADE["bias"])
    without = TwoConvs(**{**HAND_MADE["bias"], "bias": False})
    x = torch.zeros(2, 4, 10, 10)
    a, b = layer_costs(with_bias, x), layer_costs(without, x)
    assert a == b  # flops and bytes alike: the bias and its reduction are left out of both


def test_input_grad_gives_layer_0_its_backward_data() -> None:
    model = TwoConvs(**HAND_MADE["plain"])
    x = torch.zeros(2, 4, 8, 8)
    without = layer_costs(model, x)
    with_grad = layer_costs(model, x, input_grad=True)
    assert ("first", "backward_data") not in without
    assert with_grad[("first", "backward_data")].flops == closed_form(model.first, (2, 4, 8, 8))
    assert set(with_grad) - set(without) == {("first", "backward_data")}
    assert count_directions(model, x, input_grad=True).model.flops["backward_data"] == sum(
        with_grad[(n, "backward_data")].flops for n in ("first", "conv")
    )


def test_a_frozen_layer_has_no_backward_filter() -> None:
    model = TwoConvs(**HAND_MADE["plain"])
    x = torch.zeros(1, 4, 8, 8)
    model.conv.requires_grad_(False)
    costs = layer_costs(model, x)
    assert ("conv", "backward_filter") not in costs
    assert ("conv", "backward_data") in costs  # the first conv's weight still needs the gradient through it
    model.first.requires_grad_(False)
    model.conv.requires_grad_(True)
    costs = layer_costs(model, x)
    assert set(costs) == {("first", "forward"), ("conv", "forward"), ("conv", "backward_filter")}


def test_directions_filter_and_unknown_direction_refused() -> None:
    model = TwoConvs(**HAND_MADE["plain"])
    x = torch.zeros(1, 4, 8, 8)
    only = layer_costs(model, x, ["backward_filter"])
    assert {d for _, d in only} == {"backward_filter"}
    with pytest.raises(ValueError, match="'train_step'.*valid: forward, backward_data, backward_filter"):
        layer_costs(model, x, ["forward", "train_step"])


def test_bytes_of_one_layer_by_hand_and_per_dtype() -> None:
    model = TwoConvs(**HAND_MADE["stride2"])  # 4 -> 8 channels, 3x3, stride 2, padding 1
    x = torch.zeros(2, 4, 9, 9)
    costs = layer_costs(model, x)
    # input 2*4*9*9 = 648, weight 8*4*3*3 = 288, output 2*8*5*5 = 400: each direction moves the three once
    # (forward: x, w -> y; backward_data: dy, w -> dx; backward_filter: x, dy -> dw)
    for direction in DIRECTIONS:
        cost = costs[("conv", direction)]
        assert cost.bytes == (648 + 288 + 400) * 4
        assert cost.arithmetic_intensity == pytest.approx(closed_form(model.conv, (2, 4, 9, 9)) / cost.bytes)
    half = layer_costs(model, x, dtype="float16")
    assert half[("conv", "backward_filter")].bytes == (648 + 288 + 400) * 2
    bf16 = layer_costs(model.to(torch.bfloat16), x.to(torch.bfloat16))  # by default the input's dtype
    assert bf16[("conv", "forward")].bytes == (648 + 288 + 400) * 2
    model.float()
    with pytest.raises(ValueError, match="float64.*valid: float32, float16, bfloat16"):
        layer_costs(model, x, dtype=torch.float64)


def test_direction_operands_name_every_direction() -> None:
    assert set(roofline.DIRECTION_OPERANDS) == set(DIRECTIONS)
    assert roofline.DIRECTION_OPERANDS["backward_data"] == {"reads": ("output", "weight"), "writes": ("input",)}
    assert roofline.DIRECTION_OPERANDS["backward_filter"] == {"reads": ("input", "output"), "writes": ("weight",)}
    assert roofline.conv_bytes((1, 2, 3, 3), (1, 4, 3, 3), 72, "float32") == (18 + 72 + 36) * 4
    with pytest.raises(ValueError, match="'sideways'.*valid: forward, backward_data, backward_filter"):
        roofline.direction_bytes("sideways", (1,), (1,), 1, "float32")


def test_roofline_classification_of_each_direction() -> None:
    """The ridge point of these peaks is 10 TFLOPS / 1 TB/s = 10 FLOP/byte: a 1x1 conv on few channels falls
    under it (memory bound), a wide 3x3 one over it (compute bound), in every direction."""
    spec = {"fp32_tflops": 10.0, "mem_bw_gbs": 1000.0}
    narrow = nn.Sequential(nn.Conv2d(4, 4, 1), nn.Conv2d(4, 4, 1))
    wide = nn.Sequential(nn.Conv2d(64, 64, 3, padding=1), nn.Conv2d(64, 64, 3, padding=1))
    x_narrow, x_wide = torch.zeros(8, 4, 16, 16), torch.zeros(8, 64, 16, 16)
    for model, x, bound in ((narrow, x_narrow, "memory"), (wide, x_wide, "compute")):
        costs = layer_costs(model, x)
        for direction in DIRECTIONS:
            cost = costs[("1", direction)]
            intensity, verdict = cost.roofline(spec, "float32", None)
            assert verdict == bound, (direction, intensity)
            assert (intensity, verdict) == roofline.verdict(cost.flops, cost.bytes, spec, "float32", None)
            assert (intensity >= 10) == (bound == "compute")
    assert LayerCost(10, 0).arithmetic_intensity is None
    assert LayerCost(10, 5).roofline(None, "float32", None) == (2.0, None)  # no peaks known: no verdict


def _conv_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, tuple[nn.Conv2d, tuple[int, ...]]]:
    seen: dict[str, tuple[nn.Conv2d, tuple[int, ...]]] = {}

    def note(name: str):  # noqa: ANN202
        def hook(m: nn.Conv2d, args: tuple) -> None:  # returns None: a pre-hook's result replaces the input
            seen.setdefault(name, (m, tuple(args[0].shape)))

        return hook

    hooks = [m.register_forward_pre_hook(note(name)) for name, m in model.named_modules() if is_conv(m)]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_every_conv_layer_in_every_direction_it_has(name: str) -> None:
    model = getattr(torchvision.models, name)(weights=None).eval()
    x = torch.zeros(2, 3, 32, 32)
    convs = _conv_inputs(model, x)
    first = next(iter(convs))
    for input_grad in (False, True):
        costs = count_directions(model, x, input_grad=input_grad)
        expected_keys = {(n, d) for n in convs for d in DIRECTIONS if input_grad or (n, d) != (first, "backward_data")}
        assert set(costs.layers) == expected_keys
        for (layer, direction), cost in costs.layers.items():
            conv, in_shape = convs[layer]
            assert cost.flops == closed_form(conv, in_shape), (layer, direction)
        for direction in DIRECTIONS:
            assert costs.model.flops[direction] == sum(
                c.flops * costs.calls[n] for (n, d), c in costs.layers.items() if d == direction
            )
        # the classifier: one matmul forward, two backward (its input's and its weight's gradients)
        fc = model.fc if name == "resnet18" else model.classifier[1]
        assert costs.model.other_forward_flops == 2 * 2 * fc.in_features * fc.out_features
        assert costs.model.other_backward_flops == 2 * costs.model.other_forward_flops
        assert costs.model.train_step_flops == sum(costs.model.flops.values())
    if name == "mobilenet_v2":
        assert any(c.groups > 1 for c, _ in convs.values())  # depthwise layers were among those checked


def test_forward_is_what_the_forward_path_counts() -> None:
    """The forward entries agree with count_work_of (the forward rows' FLOPs) and roofline.conv_bytes."""
    model = torchvision.models.resnet18(weights=None).eval()
    x = torch.zeros(1, 3, 32, 32)
    work = count_work_of(meta_copy(model), tuple(x.shape))
    costs = count_directions(model, x)
    convs = _conv_inputs(model, x)
    for name, (conv, in_shape) in convs.items():
        cost = costs.layers[(name, "forward")]
        assert cost.flops == work.module_flops[name]
        with torch.no_grad():
            out_shape = tuple(conv(torch.zeros(in_shape)).shape)
        assert cost.bytes == roofline.conv_bytes(in_shape, out_shape, conv.weight.numel(), "float32")
    assert costs.model.flops["forward"] + costs.model.other_forward_flops == work.flops


def test_a_swapped_model_counts_as_the_unswapped_and_is_left_alone() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 4, 3, stride=2, groups=4))
    x = torch.zeros(2, 3, 12, 12)
    before = layer_costs(model, x, input_grad=True)
    weights = [p.detach().clone() for p in model.parameters()]
    with swap(model, "direct", backend="reference") as s:
        assert all(not isinstance(m, nn.Conv2d) for m in s.swapped.values())
        assert layer_costs(s.model, x, input_grad=True) == before
        assert all(p.device.type == "cpu" and p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))
    assert math.prod(x.shape) == 2 * 3 * 12 * 12  # the example input itself is not made to need a gradient
    assert not x.requires_grad


def test_counting_under_inference_mode_and_in_train_mode() -> None:
    """The caller's grad mode does not matter (the count enables grad on its copy); batch norm's statistics
    of the caller's model are not touched in train mode."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 1)).train()
    x = torch.zeros(2, 3, 8, 8)
    stats = model[1].running_mean.clone()
    with torch.inference_mode():
        inside = layer_costs(model, x)
    assert inside == layer_costs(model, x)
    assert set(inside) == {(n, d) for n in ("0", "2") for d in DIRECTIONS} - {("0", "backward_data")}
    assert torch.equal(model[1].running_mean, stats)
