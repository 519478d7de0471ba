"""The reference algorithms compute what F.conv2d computes, over many random layer shapes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.algorithms.geometry import ConvGeometry
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


def _check(algo: str, g: ConvGeometry, shape: tuple, bias: bool, seed: int = 0) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=gen, dtype=torch.float64)
    w = torch.randn(g.out_channels, g.in_channels // g.groups, *g.kernel, generator=gen, dtype=torch.float64)
    b = torch.randn(g.out_channels, generator=gen, dtype=torch.float64) if bias else None
    expected = F.conv2d(x, w, b, g.stride, g.padding, g.dilation, g.groups)
    got = make_runner(algo, w, b, g, shape[2:])(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("algo", ["direct", "gemm", "fft"])
@settings(max_examples=60, deadline=None)
@given(layer=layers())
def test_reference_matches_conv2d(algo: str, layer):
    _check(algo, *layer)


@settings(max_examples=60, deadline=None)
@given(layer=layers(winograd=True))
def test_winograd_matches_conv2d(layer):
    _check("winograd", *layer)


@pytest.mark.parametrize("algo", REFERENCE_ALGORITHMS)
def test_float32_on_a_vgg_sized_layer(algo: str):
    g = ConvGeometry(64, 64, (3, 3), padding=(1, 1))
    x, w, b = torch.randn(1, 64, 56, 56), torch.randn(64, 64, 3, 3), torch.randn(64)
    got = make_runner(algo, w, b, g, (56, 56))(x)
    torch.testing.assert_close(got, F.conv2d(x, w, b, padding=1), rtol=1e-4, atol=1e-4)


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
