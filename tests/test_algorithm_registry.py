"""The algorithm registry (harness.algorithms.registry): the records, and everything derived from them."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from harness import algorithms
from harness.algorithms import cudnn_enums, reference, registry
from harness.algorithms.geometry import ConvGeometry
from harness.config.spec import CONF_DIR, group_choices


def test_the_derived_tuples_are_the_registrys():
    assert registry.names() == algorithms.ALGORITHMS
    assert registry.sweep_names() == algorithms.CUDNN_ALGORITHMS
    assert registry.aliases() == algorithms.ALIASES
    # what the positional slice used to say: the eight cuDNN algorithms and guess, in enum order
    assert (*cudnn_enums.FWD_ALGOS, "guess") == algorithms.CUDNN_ALGORITHMS
    assert (*algorithms.CUDNN_ALGORITHMS, "find", "torch") == algorithms.ALGORITHMS


def test_every_config_file_is_a_record_or_a_mix_and_its_text_is_the_registrys():
    assert set(group_choices("algo")) == {*registry.names(), *algorithms.MIXED}
    for name in registry.names():
        assert (CONF_DIR / "algo" / f"{name}.yaml").read_text() == registry.config_text(name), name


def test_the_forward_enums_are_cudnns_by_our_names():
    fixed = [a for a in registry.algorithms() if a.kind == "cudnn"]
    assert {a.name: a.cudnn_for("forward").value for a in fixed} == cudnn_enums.FWD_ALGOS
    assert registry.get("implicit_gemm").cudnn_for("forward").enum == "CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM"
    assert registry.get("gemm").cudnn_for("backward_filter").enum == "CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0"
    assert registry.get("guess").cudnn_for("forward") is None


def test_a_cudnn_record_is_checked_against_the_enums():
    with pytest.raises(ValueError, match="not in cuDNN's backward_data enum"):
        registry.CudnnAlgo("backward_data", "implicit_precomp_gemm")
    with pytest.raises(ValueError, match="unknown direction"):
        registry.CudnnAlgo("sideways", "gemm")
    with pytest.raises(ValueError, match="unknown layout"):
        registry.CudnnAlgo("forward", "gemm", ("NCDHW",))
    with pytest.raises(ValueError, match="lower-case identifier"):
        registry.Algorithm("Bad Name", "reference", "no")


def test_the_reference_choices_keep_their_order_and_reasons():
    assert reference.reference_algorithms() == reference.REFERENCE_ALGORITHMS == ("direct", "gemm", "fft", "winograd")
    g = ConvGeometry(in_channels=4, out_channels=4, kernel=(5, 5))
    assert "winograd F(2x2,3x3) needs kernel 3x3" in reference.supports("winograd", g)
    assert (
        reference.supports("fft_tiling", g)
        == "fft_tiling has no reference implementation (only direct, gemm, fft, winograd)"
    )


@pytest.mark.parametrize("name", reference.REFERENCE_ALGORITHMS)
def test_each_reference_is_held_to_its_tolerance(name: str):
    algo = registry.get(name)
    torch.manual_seed(0)
    g = ConvGeometry(in_channels=16, out_channels=8, kernel=(3, 3), padding=(1, 1))
    x, w, b = torch.randn(2, 16, 12, 12), torch.randn(8, 16, 3, 3), torch.randn(8)
    got = algo.reference(w, b, g, (12, 12))(x)
    expected = F.conv2d(x, w, b, padding=1)
    assert ((got - expected).abs().max() / expected.abs().max()).item() < algo.tolerance


def test_register_refuses_a_taken_name_and_unregister_restores_the_lists():
    before = algorithms.ALGORITHMS
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("gemm"))
    extra = dataclasses.replace(registry.get("gemm"), name="gemm_again", in_sweep=False)
    registry.register(extra)
    try:
        assert (*before, "gemm_again") == algorithms.ALGORITHMS
        assert algorithms.canonical_name("gemm-again") == "gemm_again"
        assert reference.reference_algorithms()[-1] == "gemm_again"
        g = ConvGeometry(in_channels=2, out_channels=3, kernel=(3, 3))
        x, w = torch.randn(1, 2, 6, 6), torch.randn(3, 2, 3, 3)
        torch.testing.assert_close(reference.make_runner("gemm_again", w, None, g, (6, 6))(x), F.conv2d(x, w))
    finally:
        assert registry.unregister("gemm_again") is extra
    assert before == algorithms.ALGORITHMS
    with pytest.raises(KeyError, match="unknown algorithm 'gemm_again'"):
        registry.get("gemm_again")
