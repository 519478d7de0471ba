"""Adding an algorithm is one registry record and one config file: a toy one, measured for real.

The toy is a direct convolution in another loop order (output row by output row, then kernel tap; the
built-in ``direct`` loops over taps only). It is registered, its conf/algo file is written from the registry's
``config_text`` into a temporary config dir on Hydra's search path, and a point is measured on the CPU through
the normal path (``harness.measure_point``, backend=reference, verified against the torch baseline). Then it
is unregistered and every derived list is as before.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import harness
from harness import algorithms
from harness.algorithms import registry
from harness.algorithms.geometry import ConvGeometry
from harness.errors import ConfigError


def row_major_direct(x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None, g: ConvGeometry) -> torch.Tensor:
    """Direct convolution one output row at a time, each row summed over the kernel taps (groups 1)."""
    n = x.shape[0]
    oh, ow = g.output_hw(x.shape[2], x.shape[3])
    xp = F.pad(x, (g.padding[1], g.padding[1], g.padding[0], g.padding[0]))
    y = x.new_zeros(n, g.out_channels, oh, ow)
    (sh, sw), (dh, dw) = g.stride, g.dilation
    for r in range(oh):
        for i in range(g.kernel[0]):
            row = xp[:, :, r * sh + i * dh, :]  # (N, C, Wp)
            for j in range(g.kernel[1]):
                cols = row[:, :, j * dw : j * dw + sw * (ow - 1) + 1 : sw]  # (N, C, OW)
                y[:, :, r, :] += torch.einsum("ncw,oc->now", cols, w[:, :, i, j])
    return y if bias is None else y + bias.view(1, -1, 1, 1)


def toy_runner(weight: torch.Tensor, bias: torch.Tensor | None, g: ConvGeometry, in_hw: tuple[int, int]):
    return lambda x: row_major_direct(x, weight, bias, g)


def toy_supports(g: ConvGeometry) -> str | None:
    return None if g.groups == 1 else f"toy needs groups 1, this layer has {g.groups}"


TOY = registry.Algorithm(
    "toy",
    "reference",
    "A toy: direct convolution row by row (tests/test_toy_algorithm.py)",
    reference=toy_runner,
    supports=toy_supports,
)


@pytest.fixture
def toy(tmp_path: Path):
    before = (algorithms.ALGORITHMS, algorithms.CUDNN_ALGORITHMS, dict(algorithms.ALIASES))
    registry.register(TOY)
    (tmp_path / "algo").mkdir()
    (tmp_path / "algo" / "toy.yaml").write_text(registry.config_text("toy"))
    try:
        yield tmp_path
    finally:
        registry.unregister("toy")
    assert before == (algorithms.ALGORITHMS, algorithms.CUDNN_ALGORITHMS, algorithms.ALIASES)


def test_the_toy_computes_what_conv2d_computes():
    g = ConvGeometry(in_channels=3, out_channels=5, kernel=(3, 2), stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    x, w, b = torch.randn(2, 3, 9, 8, dtype=torch.float64), torch.randn(5, 3, 3, 2, dtype=torch.float64), None
    expected = F.conv2d(x, w, b, stride=(2, 1), padding=(1, 0), dilation=(1, 2))
    torch.testing.assert_close(row_major_direct(x, w, b, g), expected)


def test_registering_makes_it_a_choice_everywhere(toy: Path):
    assert "toy" in algorithms.ALGORITHMS and "toy" not in algorithms.CUDNN_ALGORITHMS
    assert algorithms.canonical_name("Toy") == "toy"
    assert "toy" in algorithms.runnable_on(torch.device("cpu"), "reference")
    assert "toy" not in algorithms.runnable_on(torch.device("cuda"), "cudnn")
    assert (
        registry.config_text("toy")
        == "# A toy: direct convolution row by row (tests/test_toy_algorithm.py)\nname: toy\n"
    )


def test_a_real_point_through_the_normal_path(toy: Path):
    point = harness.measure_point(
        "resnet18",
        "toy",
        input_size=32,
        overrides=["backend=reference", "stage.energy_window_s=0", f"hydra.searchpath=[file://{toy}]"],
    )
    assert point.status == "ok", point
    assert point.settings["backend"] == "reference"
    assert point.layers and {(r["algo_requested"], r["algo_used"]) for r in point.layers} == {("toy", "toy")}
    row = point.row({})
    assert row["verified"] and row["p50_ms"] > 0 and row["algo_fallback_layers"] == 0
    assert row["max_rel_err"] < TOY.tolerance  # verified against the torch baseline on the same input


def test_without_the_record_the_name_is_refused():
    assert "toy" not in algorithms.ALGORITHMS
    with pytest.raises(ConfigError, match="unknown algo 'toy'"):
        algorithms.canonical_name("toy")
