"""The reference algorithms compute what F.conv2d computes, over many random layer shapes, in both memory
layouts: in nhwc (channels_last operands) each also returns its output channels_last, as torch does."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.algorithms.geometry import ConvGeometry
from harness.algorithms.memory_layout import LAYOUTS, in_layout, to_layout
from harness.algorithms.reference import REFERENCE_ALGORITHMS, make_runner, supports


@st.composite
def layers(draw, winograd: bool = False):
    groups = draw(st.sampled_from([1, 1, 2, 3]))
    cin, cout = groups * draw(st.integers(1, 4)), groups * draw(st.integers(1, 4))
    if winograd:
        kernel, stride, dilation = (3, 3), (1, 1), (1, 1)
    else:
        kernel = (draw(st.integers(1, 7)), draw(st.integers(1, 7)))
        stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
        dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    g = ConvGeometry(cin, cout, kernel, stride, padding, dilation, groups)
    keh, kew = g.effective_kernel()
    h = draw(st.integers(max(1, keh - 2 * padding[0]), keh + 12))
    w = draw(st.integers(max(1, kew - 2 * padding[1]), kew + 12))
    batch = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    return g, (batch, cin, h, w), bias


def _check_strides(got: torch.Tensor, layout: str) -> None:
    """The output is dense in ``layout``: the strides torch gives a new tensor in it, on every dimension longer
    than one (the stride of a dimension of length one is never used)."""
    dense = to_layout(torch.empty(got.shape, device="meta"), layout)
    used = [i for i, n in enumerate(got.shape) if n > 1]
    assert [got.stride(i) for i in used] == [
        dense.stride(i) for i in used
    ], f"{layout} output has strides {got.stride()}, not {dense.stride()}"
    assert in_layout(got, layout)


def _check(algo: str, g: ConvGeometry, shape: tuple, bias: bool, seed: int = 0, layout: str = "nchw") -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    w = torch.randn(g.out_channels, g.in_channels // g.groups, *g.kernel, generator=gen, dtype=torch.float64)
    b = torch.randn(g.out_channels, generator=gen, dtype=torch.float64) if bias else None
    expected = F.conv2d(x, w, b, g.stride, g.padding, g.dilation, g.groups)
    got = make_runner(algo, to_layout(w, layout), b, g, shape[2:], layout)(to_layout(x, layout))
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)
    _check_strides(got, layout)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("algo", ["direct", "gemm", "fft"])
@settings(max_examples=60, deadline=None)
@given(layer=layers())
def test_reference_matches_conv2d(algo: str, layout: str, layer):
    _check(algo, *layer, layout=layout)


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(max_examples=60, deadline=None)
@given(layer=layers(winograd=True))
def test_winograd_matches_conv2d(layout: str, layer):
    _check("winograd", *layer, layout=layout)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("algo", REFERENCE_ALGORITHMS)
def test_float32_on_a_vgg_sized_layer(algo: str, layout: str):
    """FP32 (what the CPU tests of NHWC cover: FP16 and BF16 are GPU-only) against torch's own convolution
    of the same channels_last operands, strides included."""
    g = ConvGeometry(64, 64, (3, 3), padding=(1, 1))
    x, w, b = torch.randn(1, 64, 56, 56), torch.randn(64, 64, 3, 3), torch.randn(64)
    x, w = to_layout(x, layout), to_layout(w, layout)
    got = make_runner(algo, w, b, g, (56, 56), layout)(x)
    want = F.conv2d(x, w, b, padding=1)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
    assert got.stride() == want.stride()
    _check_strides(got, layout)


def test_a_layout_an_algorithm_has_no_reference_for_is_unsupported_with_the_reason():
    from dataclasses import replace

    from harness.algorithms import registry

    gemm = registry.get("gemm")
    registry.register(replace(gemm, name="gemm_nchw_only", reference_layouts=("nchw",)))
    try:
        g = ConvGeometry(4, 4, (3, 3))
        assert supports("gemm_nchw_only", g, "nchw") is None
        reason = supports("gemm_nchw_only", g, "nhwc")
        assert reason and "nchw only" in reason and "layout=nhwc" in reason
        with pytest.raises(ValueError, match="layout=nhwc"):
            make_runner("gemm_nchw_only", torch.randn(4, 4, 3, 3), None, g, (8, 8), "nhwc")
    finally:
        registry.unregister("gemm_nchw_only")


@pytest.mark.parametrize(
    ("kernel", "stride", "dilation", "ok"),
    [
        ((3, 3), (1, 1), (1, 1), True),
        ((1, 1), (1, 1), (1, 1), False),
        ((3, 3), (2, 2), (1, 1), False),
        ((3, 3), (1, 1), (2, 2), False),
        ((5, 5), (1, 1), (1, 1), False),
        ((3, 1), (1, 1), (1, 1), False),
    ],
)
def test_winograd_support(kernel, stride, dilation, ok: bool):
    reason = supports("winograd", ConvGeometry(4, 4, kernel, stride, (1, 1), dilation))
    assert (reason is None) == ok
    if not ok:
        assert "needs kernel 3x3, stride 1, dilation 1" in reason
        with pytest.raises(ValueError, match="needs kernel 3x3"):
            make_runner(
                "winograd",
                torch.zeros(4, 4, *kernel),
                None,
                ConvGeometry(4, 4, kernel, stride, (1, 1), dilation),
                (8, 8),
            )


def test_every_reference_algorithm_supports_other_shapes_and_cudnn_only_ones_do_not():
    g = ConvGeometry(4, 8, (7, 7), (2, 2), (3, 3), (1, 1), 2)
    for algo in ("direct", "gemm", "fft"):
        assert supports(algo, g) is None
    for algo in ("implicit_gemm", "fft_tiling", "guess"):
        assert "no reference implementation" in supports(algo, g)


def test_cached_kernel_transforms_notice_changed_weights():
    g = ConvGeometry(2, 2, (3, 3), padding=(1, 1))
    w = torch.randn(2, 2, 3, 3)
    for algo in ("fft", "winograd"):
        run = make_runner(algo, w, None, g, (8, 8))
        run(torch.randn(1, 2, 8, 8))
        w.add_(1.0)
        with pytest.raises(RuntimeError, match="weights changed"):
            run(torch.randn(1, 2, 8, 8))
