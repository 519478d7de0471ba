"""layout=nhwc through a whole point on the CPU: the model and its input in channels_last for every backend,
the reference algorithms computing in NHWC, verified against torch's own channels_last forward, and every
row (points and layers) saying nhwc."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness.algorithms.memory_layout import in_layout
from harness.algorithms.swap import AlgoConv2d
from harness.measure.point import PointMeasurer
from harness.results.read import read
from harness.run import runner
from tests.conftest import FAST
from tests.helpers import make_spec


@pytest.mark.parametrize("algo", ["gemm", "torch"])
def test_an_nhwc_run_measures_channels_last_and_says_so_on_every_row(tmp_path: Path, algo: str):
    runner.run(make_spec(tmp_path, *FAST, "model=resnet18", f"algo={algo}", "layout=nhwc"))
    points, layers = read(tmp_path, "points"), read(tmp_path, "layers")
    assert len(points) and set(points["status"]) == {"ok"} and set(points["layout"]) == {"nhwc"}
    assert len(layers) and set(layers["layout"]) == {"nhwc"}
    if algo != "torch":  # checked against torch's own forward of the same channels_last model and input
        assert points["verified"].all() and (points["max_rel_err"] < 1e-4).all()
        assert set(layers["backend"]) == {"reference"} and set(layers["algo_used"]) == {"gemm"}


def test_the_measurer_puts_model_input_and_every_layer_in_the_jobs_layout(tmp_path: Path):
    specs = [make_spec(tmp_path, *FAST, "model=resnet18", "algo=fft", f"layout={lay}") for lay in ("nchw", "nhwc")]
    nchw, nhwc = (PointMeasurer(spec, runner.validate(spec)) for spec in specs)
    x, xl = nchw.input(32, 2), nhwc.input(32, 2)
    assert in_layout(xl, "nhwc") and not in_layout(xl, "nchw") and torch.equal(x, xl)  # the same values
    convs = [m for m in nhwc.model.modules() if isinstance(m, AlgoConv2d)]
    assert convs and all(m.layout == "nhwc" and in_layout(m.weight, "nhwc") for m in convs)
    result = nhwc.measure_point(32, 2)
    assert result.status == "ok" and result.verification is not None and result.verification.verified
    assert {layer["algo_used"] for layer in result.layers} == {"fft"}


def test_an_nhwc_and_an_nchw_point_are_two_points_of_one_tree(tmp_path: Path):
    for layout in ("nchw", "nhwc"):
        runner.run(make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm", f"layout={layout}"))
    points = read(tmp_path, "points")
    assert sorted(points["layout"]) == ["nchw", "nhwc"] and points["config_hash"].nunique() == 2
