"""The reference backward convolutions give torch's autograd gradients, per algorithm, direction, layout and
dtype, and refuse what they cannot run with the reason.

Tolerances, as max|got - torch| / max|torch| (the harness's max_rel_err): float64 1e-10, float32 1e-5 (both
sides computed in float32, so this holds the two roundings, not an exact answer; the measured worst on these
cases is about 4e-7 in float32 and 8e-16 in float64). Random data with C != K, R != S and H != W makes any
transposed, flipped or misplaced gradient fail (tested below: the check rejects such a gradient).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import harness.algorithms  # noqa: F401  (registers the built-in algorithms)
from harness.algorithms import reference_backward as rb
from harness.algorithms import registry
from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.memory_layout import LAYOUTS, in_layout, to_layout

ALGOS = ("direct", "gemm", "fft", "winograd")
TOLERANCE = {torch.float64: 1e-10, torch.float32: 1e-5}

# (geometry, batch, input (h, w)): stride 2, padding 0/1/3, dilation 2, groups 2 and depthwise, 1x1, 7x7,
# non-square kernels and inputs, batch 1 and 3
CASES = {
    "3x3-s1-p1": (ConvGeometry(4, 6, (3, 3), padding=(1, 1)), 1, (8, 8)),
    "3x3-s1-p0-nonsquare": (ConvGeometry(3, 5, (3, 3)), 3, (9, 6)),
    "3x3-s1-p3-g2": (ConvGeometry(4, 6, (3, 3), padding=(3, 3), groups=2), 3, (5, 7)),
    "3x3-s1-p1-depthwise": (ConvGeometry(6, 6, (3, 3), padding=(1, 1), groups=6), 1, (7, 9)),
    "3x3-s2-p1-nonsquare": (ConvGeometry(4, 5, (3, 3), (2, 2), (1, 1)), 3, (9, 7)),
    "3x3-s1-p2-d2": (ConvGeometry(3, 4, (3, 3), padding=(2, 2), dilation=(2, 2)), 1, (8, 10)),
    "3x3-s2-p1-depthwise": (ConvGeometry(4, 4, (3, 3), (2, 2), (1, 1), groups=4), 3, (10, 8)),
    "1x1-s1": (ConvGeometry(5, 3, (1, 1)), 3, (4, 6)),
    "1x1-s2-g2": (ConvGeometry(4, 6, (1, 1), (2, 2), groups=2), 1, (7, 6)),
    "7x7-s2-p3": (ConvGeometry(3, 4, (7, 7), (2, 2), (3, 3)), 1, (13, 11)),
    "5x3-s21-p21-d12-g2": (ConvGeometry(4, 6, (5, 3), (2, 1), (2, 1), (1, 2), 2), 3, (11, 9)),
}


def _data(g: ConvGeometry, batch: int, in_hw: tuple[int, int], dtype: torch.dtype, seed: int = 0):
    """x, w and a random grad_out, with torch's autograd gradients of the input and the weight."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, g.in_channels, *in_hw, generator=gen, dtype=dtype, requires_grad=True)
    w = torch.randn(g.out_channels, g.in_channels // g.groups, *g.kernel, generator=gen, dtype=dtype)
    w.requires_grad_(True)
    y = F.conv2d(x, w, None, g.stride, g.padding, g.dilation, g.groups)
    dy = torch.randn(y.shape, generator=gen, dtype=dtype)
    y.backward(dy)
    return x.detach(), w.detach(), dy, x.grad, w.grad


def _rel_err(got: torch.Tensor, expected: torch.Tensor) -> float:
    """max|got - expected| / max|expected|; the absolute error where expected is all zeros (a layer whose
    taps all fall in the padding for some input pixels can give an input no gradient at all)."""
    err, scale = (got - expected).abs().max().item(), expected.abs().max().item()
    return err / scale if scale > 0 else err


def _gradient(direction: str, algo: str, g: ConvGeometry, batch: int, in_hw, dtype, layout: str, seed: int = 0):
    """(the reference's gradient, torch's) for one layer, the operands in ``layout``."""
    x, w, dy, gx, gw = _data(g, batch, in_hw, dtype, seed)
    x, w, dy = (to_layout(t, layout) for t in (x, w, dy))
    run = rb.make_runner(direction, algo, w, g, in_hw, layout)
    if direction == "backward_data":
        return run(dy), gx
    return run(x, dy), gw


def _check_layout(got: torch.Tensor, layout: str) -> None:
    """The gradient is dense in ``layout`` with the strides torch gives a new tensor in it (on dimensions
    longer than one), as autograd returns it for operands in that layout."""
    dense = to_layout(torch.empty(got.shape, device="meta"), layout)
    used = [i for i, n in enumerate(got.shape) if n > 1]
    assert [got.stride(i) for i in used] == [dense.stride(i) for i in used]
    assert in_layout(got, layout)


def _supported_params():
    out = []
    for name, (g, batch, in_hw) in CASES.items():
        for algo in ALGOS:
            if rb.supports("backward_data", algo, g) is None:
                out.append(pytest.param(algo, g, batch, in_hw, id=f"{algo}-{name}"))
    return out


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("direction", rb.DIRECTIONS)
@pytest.mark.parametrize(("algo", "g", "batch", "in_hw"), _supported_params())
def test_gradient_matches_autograd(algo, g, batch, in_hw, direction, layout, dtype):
    got, expected = _gradient(direction, algo, g, batch, in_hw, dtype, layout)
    assert got.shape == expected.shape and got.dtype == dtype
    assert _rel_err(got, expected) <= TOLERANCE[dtype]
    _check_layout(got, layout)


def test_every_builtin_algorithm_and_case_is_covered():
    """Each of the four runs in both directions on several cases; winograd on its 3x3, stride-1 ones only."""
    covered = {p.values[0] for p in _supported_params()}
    assert covered == set(ALGOS)
    winograd = [p for p in _supported_params() if p.values[0] == "winograd"]
    assert len(winograd) == 4
    for direction in rb.DIRECTIONS:
        assert rb.backward_algorithms(direction)[:4] == ALGOS


@st.composite
def layers(draw, winograd: bool = False):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = groups * draw(st.integers(1, 3)), groups * draw(st.integers(1, 3))
    if winograd:
        kernel, stride, dilation = (3, 3), (1, 1), (1, 1)
    else:
        kernel = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    g = ConvGeometry(cin, cout, kernel, stride, padding, dilation, groups)
    keh, kew = g.effective_kernel()
    h = draw(st.integers(max(1, keh - 2 * padding[0]), keh + 8))
    w = draw(st.integers(max(1, kew - 2 * padding[1]), kew + 8))
    return g, draw(st.integers(1, 2)), (h, w)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("direction", rb.DIRECTIONS)
@pytest.mark.parametrize("algo", ALGOS)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_random_layers_match_autograd(algo, direction, layout, data):
    g, batch, in_hw = data.draw(layers(winograd=algo == "winograd"))
    got, expected = _gradient(direction, algo, g, batch, in_hw, torch.float64, layout)
    assert _rel_err(got, expected) <= TOLERANCE[torch.float64]


@pytest.mark.parametrize("direction", rb.DIRECTIONS)
def test_the_check_rejects_a_flipped_or_transposed_gradient(direction):
    """The comparison has the power to catch the classic mistakes: the kernel's taps flipped, the gradient's
    H and W exchanged (a square case, so the shapes still agree), the channels in another order."""
    g = ConvGeometry(4, 4, (3, 3), padding=(1, 1))
    got, expected = _gradient(direction, "gemm", g, 2, (6, 6), torch.float64, "nchw")
    assert _rel_err(got, expected) <= TOLERANCE[torch.float64]
    wrongs = [got.flip(-2, -1), got.transpose(-2, -1), got.flip(1)]
    if direction == "backward_filter":
        wrongs.append(got.transpose(0, 1))  # the weight's in/out channels exchanged
    for wrong in wrongs:
        assert wrong.shape == expected.shape and _rel_err(wrong, expected) > 0.1


def test_winograd_f32_tile_is_a_correlation():
    """The F(3,2) matrices behind winograd's backward_filter: A^T [(G e) * (B^T d)] is the 3-output
    correlation of a 4-tap d with a 2-tap e, in one dimension and (nested) in two."""
    bt, gm, at = (torch.tensor(m, dtype=torch.float64) for m in (rb._BT_F32, rb._G_F32, rb._AT_F32))
    gen = torch.Generator().manual_seed(1)
    d, e = torch.randn(4, generator=gen, dtype=torch.float64), torch.randn(2, generator=gen, dtype=torch.float64)
    expected = torch.stack([d[i] * e[0] + d[i + 1] * e[1] for i in range(3)])
    torch.testing.assert_close(at @ ((gm @ e) * (bt @ d)), expected, rtol=1e-12, atol=1e-12)
    d2, e2 = (
        torch.randn(4, 4, generator=gen, dtype=torch.float64),
        torch.randn(2, 2, generator=gen, dtype=torch.float64),
    )
    expected2 = F.conv2d(d2.view(1, 1, 4, 4), e2.view(1, 1, 2, 2)).view(3, 3)
    torch.testing.assert_close(at @ ((gm @ e2 @ gm.T) * (bt @ d2 @ bt.T)) @ at.T, expected2, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("algo", ["fft", "winograd"])
def test_backward_data_follows_a_changed_weight(algo):
    """fft and winograd transform the kernel once; an optimizer step changes the weight in place, and the
    next call uses the new weight's transform, not a stale one."""
    g = ConvGeometry(3, 4, (3, 3), padding=(1, 1))
    x, w, dy, gx, _ = _data(g, 2, (6, 5), torch.float64)
    run = rb.make_runner("backward_data", algo, w, g, (6, 5))
    assert _rel_err(run(dy), gx) <= 1e-10
    with torch.no_grad():
        w.mul_(-0.5).add_(1.0)
    x.requires_grad_(True)
    F.conv2d(x, w, None, g.stride, g.padding).backward(dy)
    assert _rel_err(run(dy), x.grad) <= 1e-10


# ---- support rules and refusals ----


@pytest.mark.parametrize("direction", rb.DIRECTIONS)
@pytest.mark.parametrize(
    ("g", "says"),
    [
        (ConvGeometry(4, 4, (5, 5), padding=(2, 2)), "kernel 5x5"),
        (ConvGeometry(4, 4, (3, 3), (2, 2), (1, 1)), "stride 2x2"),
        (ConvGeometry(4, 4, (3, 3), padding=(2, 2), dilation=(2, 2)), "dilation 2x2"),
    ],
)
def test_winograd_keeps_its_forward_limits(direction, g, says):
    reason = rb.supports(direction, "winograd", g)
    assert reason is not None and "winograd F(2x2,3x3) needs kernel 3x3, stride 1, dilation 1" in reason
    assert says in reason
    with pytest.raises(ValueError, match="winograd F"):
        rb.make_runner(direction, "winograd", torch.zeros(4, 4, *g.kernel), g, (8, 8))
    for algo in ("direct", "gemm", "fft"):
        assert rb.supports(direction, algo, g) is None


@pytest.mark.parametrize("direction", rb.DIRECTIONS)
@pytest.mark.parametrize("algo", ["implicit_gemm", "winograd_nonfused", "guess", "find", "torch", "nonsense"])
def test_an_algorithm_without_a_reference_is_refused(direction, algo):
    reason = rb.supports(direction, algo, ConvGeometry(4, 4, (3, 3)))
    assert reason == f"{algo} has no reference implementation (only direct, gemm, fft, winograd)"


@pytest.mark.parametrize("bad", ["forward", "backward", "train_step", "Backward_Data"])
def test_a_bad_direction_is_named_with_the_valid_ones(bad):
    g = ConvGeometry(4, 4, (3, 3))
    for call in (
        lambda: rb.supports(bad, "gemm", g),
        lambda: rb.make_runner(bad, "gemm", torch.zeros(4, 4, 3, 3), g, (5, 5)),
    ):
        with pytest.raises(
            ValueError, match=f"unknown backward direction '{bad}'; valid: backward_data, backward_filter"
        ):
            call()


def test_a_layout_the_reference_does_not_compute_in_is_refused():
    reason = rb.supports("backward_data", "gemm", ConvGeometry(4, 4, (3, 3)), "nc4hw4")
    assert reason == "gemm's reference computes in nchw, nhwc only, not in layout=nc4hw4"


def _toy_data(weight, g, in_hw, layout="nchw"):
    """A backward_data factory of a toy: direct's, under another name (groups 1 only, as the toy's rule)."""
    return rb.direct_backward_data_runner(weight, g, in_hw, layout)


@pytest.fixture
def toys():
    """Two registered reference algorithms: one with a forward reference only, one with backward_data too."""
    forward_only = registry.Algorithm(
        "toy_fwd", "reference", "toy", reference=registry.get("direct").reference, supports=_groups_1
    )
    with_data = registry.Algorithm(
        "toy_bwd",
        "reference",
        "toy",
        reference=registry.get("direct").reference,
        supports=_groups_1,
        reference_backward_data=_toy_data,
    )
    registry.register(forward_only)
    registry.register(with_data)
    try:
        yield
    finally:
        registry.unregister("toy_fwd")
        registry.unregister("toy_bwd")


def _groups_1(g: ConvGeometry) -> str | None:
    return None if g.groups == 1 else f"the toy needs groups 1, this layer has {g.groups}"


def test_registered_algorithms_are_supported_as_their_records_say(toys):
    g = ConvGeometry(3, 5, (3, 2), padding=(1, 0))
    for direction in rb.DIRECTIONS:
        reason = rb.supports(direction, "toy_fwd", g)
        assert reason == (
            f"toy_fwd has a forward reference only, no {direction} reference "
            f"(the references with one: {', '.join(rb.backward_algorithms(direction))})"
        )
        with pytest.raises(ValueError, match="forward reference only"):
            rb.make_runner(direction, "toy_fwd", torch.zeros(5, 3, 3, 2), g, (6, 6))
    assert "toy_bwd" in rb.backward_algorithms("backward_data")
    assert "toy_bwd" not in rb.backward_algorithms("backward_filter")
    assert rb.supports("backward_filter", "toy_bwd", g).startswith("toy_bwd has no backward_filter reference")
    assert rb.supports("backward_data", "toy_bwd", ConvGeometry(4, 4, (3, 3), groups=2)) == (
        "the toy needs groups 1, this layer has 2"
    )
    assert rb.supports("backward_data", "toy_bwd", g, "nhwc") == (
        "toy_bwd's reference computes in nchw only, not in layout=nhwc"
    )
    got, expected = _gradient("backward_data", "toy_bwd", g, 2, (6, 7), torch.float64, "nchw")
    assert _rel_err(got, expected) <= 1e-10


def test_a_gradient_or_input_of_another_shape_is_refused():
    g = ConvGeometry(3, 4, (3, 3), (2, 2), (1, 1))  # input 9x7 -> output 5x4
    data = rb.make_runner("backward_data", "gemm", torch.zeros(4, 3, 3, 3), g, (9, 7))
    data(torch.zeros(2, 4, 5, 4))
    with pytest.raises(
        ValueError, match=r"grad_out of shape \(2, 4, 4, 4\) does not fit this layer: expected \(N, 4, 5, 4\)"
    ):
        data(torch.zeros(2, 4, 4, 4))
    filt = rb.make_runner("backward_filter", "gemm", torch.zeros(4, 3, 3, 3), g, (9, 7))
    with pytest.raises(ValueError, match=r"x of shape \(2, 3, 8, 7\)"):
        filt(torch.zeros(2, 3, 8, 7), torch.zeros(2, 4, 5, 4))
    with pytest.raises(ValueError, match="x has batch 2 but grad_out has batch 3"):
        filt(torch.zeros(2, 3, 9, 7), torch.zeros(3, 4, 5, 4))
    with pytest.raises(ValueError, match="smaller than the kernel"):
        rb.make_runner("backward_data", "gemm", torch.zeros(4, 3, 3, 3), g, (0, 7))
