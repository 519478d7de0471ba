"""The per-layer pass, the FLOP count, and the choice of device."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import torch
from torch import nn

from harness.errors import ConfigError, DeviceMismatchError
from harness.measure.device import resolve_device
from harness.measure.flops import count_work
from harness.measure.layers import HEAD_START_GROWTH, HeadStart, LayerProbe, LayerRecord, conv_geometry
from harness.models import build_model
from harness.results.hostbound import HOST_BOUND
from tests.helpers import make_spec


def _shapes_by_plain_hooks(model: nn.Module, x: torch.Tensor) -> list[tuple]:
    seen = []
    hooks = [
        m.register_forward_hook(lambda m, a, o, n=n: seen.append((n, tuple(a[0].shape), tuple(o.shape))))
        for n, m in model.named_modules()
        if isinstance(m, nn.Conv2d)
    ]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", ["resnet18", "googlenet", "mobilenet_v2"])
def test_probe_records_each_layers_own_shapes_in_execution_order(name: str):
    model = build_model(name)
    x = torch.randn(2, 3, 80, 80)
    expected = _shapes_by_plain_hooks(model, x)
    with torch.no_grad(), LayerProbe(model, torch.device("cpu")) as probe:
        for _ in range(3):
            probe.run(lambda: model(x))
    got = [(r.name, r.in_shape, r.out_shape) for r in probe.records]
    assert got == expected
    assert [r.index for r in probe.records] == list(range(len(expected)))
    assert all(len(r.times_ms) == 3 and min(r.times_ms) > 0 for r in probe.records)
    # hooks are gone after the pass: whole-model timing never runs with them
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in model.modules())


def test_module_called_twice_gives_two_layers():
    conv = nn.Conv2d(3, 3, 3, padding=1)
    model = nn.Sequential()
    model.add_module("c", conv)
    twice = lambda: conv(conv(torch.randn(1, 3, 8, 8)))  # noqa: E731
    with torch.no_grad(), LayerProbe(model, torch.device("cpu")) as probe:
        probe.run(twice)
    assert [(r.index, r.name) for r in probe.records] == [(0, "c"), (1, "c")]


def test_conv_geometry():
    g = conv_geometry(nn.Conv2d(8, 16, (3, 5), stride=(1, 2), padding=(1, 2), dilation=(2, 1), groups=4))
    assert g == {
        "in_channels": 8,
        "out_channels": 16,
        "kernel_h": 3,
        "kernel_w": 5,
        "stride_h": 1,
        "stride_w": 2,
        "pad_h": 1,
        "pad_w": 2,
        "dilation_h": 2,
        "dilation_w": 1,
        "groups": 4,
    }
    same = conv_geometry(nn.Conv2d(4, 4, 5, padding="same"))
    assert (same["pad_h"], same["pad_w"]) == (2, 2)


def test_flops_of_resnet50_at_224_and_per_layer():
    work = count_work("resnet50", {}, (1, 3, 224, 224))
    assert work.flops == 8_178_368_512 and work.params == 25_557_032
    # conv1: 64 out channels x 112 x 112 outputs x (3 x 7 x 7) MACs x 2
    assert work.module_flops["conv1"] == 2 * 64 * 112 * 112 * 3 * 7 * 7
    assert count_work("resnet50", {}, (4, 3, 224, 224)).flops == 4 * work.flops


class _FakeCuda:
    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
        monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: name)


def test_named_gpu_type_is_refused_without_cuda(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = make_spec(tmp_path, "gpu=l40s")
    with pytest.raises(DeviceMismatchError, match="no CUDA GPU.*gpu=local"):
        resolve_device(spec.device, spec.gpu)


def test_named_gpu_type_is_refused_on_another_gpu(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _FakeCuda(monkeypatch, "NVIDIA H100 80GB HBM3")
    with pytest.raises(DeviceMismatchError, match="'L40S'.*NVIDIA H100 80GB HBM3"):
        spec = make_spec(tmp_path, "gpu=l40s")
        resolve_device(spec.device, spec.gpu)
    spec = make_spec(tmp_path, "gpu=h100")
    info = resolve_device(spec.device, spec.gpu)
    assert info.device == torch.device("cuda", 0) and info.name == "NVIDIA H100 80GB HBM3"


def test_local_picks_the_gpu_when_there_is_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _FakeCuda(monkeypatch, "NVIDIA L40S")
    spec = make_spec(tmp_path, "device=auto")  # the default, said here: make_spec alone pins device=cpu
    assert resolve_device(spec.device, spec.gpu).device.type == "cuda"
    spec = make_spec(tmp_path, "device=cpu")
    assert resolve_device(spec.device, spec.gpu).device.type == "cpu"
    with pytest.raises(ConfigError, match="device=cpu"):
        spec = make_spec(tmp_path, "gpu=l40s", "device=cpu")
        resolve_device(spec.device, spec.gpu)


def test_device_cuda_without_a_gpu_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec = make_spec(tmp_path, "device=cuda")
    with pytest.raises(DeviceMismatchError, match="device=cuda"):
        resolve_device(spec.device, spec.gpu)


class _CpuHeadStart(HeadStart):
    """A head start on the CPU: the spin is a no-op and ``covered`` answers from a script of outcomes."""

    def __init__(self, outcomes: list[bool], max_cycles: int) -> None:
        super().__init__(cycles=1, max_cycles=max_cycles)
        self.outcomes = outcomes
        self.begun: list[tuple[int, int]] = []  # (call, cycles) of each spin

    def begin(self, call: int):
        self.begun.append((call, self.cycles_for(call)))
        return time.perf_counter_ns()

    def covered(self, start) -> bool:
        return self.outcomes.pop(0) if self.outcomes else True


def _two_convs() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3))


def test_a_pass_whose_head_start_ran_out_is_run_again_with_a_longer_one_for_that_layer():
    model, x = _two_convs(), torch.randn(1, 3, 16, 16)
    head = _CpuHeadStart([True, False, True, True], max_cycles=10**6)  # pass 1: the second layer not covered
    with torch.no_grad(), LayerProbe(model, torch.device("cpu"), head_start=head) as probe:
        probe.run(lambda: model(x))
        probe.run(lambda: model(x))
    g = HEAD_START_GROWTH
    assert head.begun == [(0, 1), (1, 1), (0, 1), (1, g), (0, 1), (1, g)]  # only the second layer's spin grew
    assert [r.name for r in probe.records] == ["0", "2"]  # the retried pass added no records
    assert all(len(r.times_ms) == 2 for r in probe.records)  # one time per run, from its accepted pass
    assert probe.host_bound_layers == set() and [r.host_bound for r in probe.records] == [False, False]


def test_layers_the_longest_head_start_cannot_cover_are_kept_marked_and_named(caplog):
    model, x = _two_convs(), torch.randn(1, 3, 16, 16)
    head = _CpuHeadStart([True, False] * 50, max_cycles=HEAD_START_GROWTH**2)  # the second never: 1, 4, 16 cycles
    with torch.no_grad(), LayerProbe(model, torch.device("cpu"), head_start=head) as probe:
        probe.run(lambda: model(x))
    assert [c for call, c in head.begun if call == 1] == [1, HEAD_START_GROWTH, HEAD_START_GROWTH**2]
    assert all(len(r.times_ms) == 1 for r in probe.records)
    assert probe.host_bound_layers == {"2"} and [r.host_bound for r in probe.records] == [False, True]
    assert "layer(s) 2 include host time" in caplog.text


def test_a_host_bound_layer_says_so_in_its_row(tmp_path):
    """The mark reaches the layers table: a CPU run whose probe is given a head start that never covers."""
    from harness.measure import point as point_module

    record = LayerRecord(0, "conv", nn.Conv2d(3, 4, 3), (1, 3, 8, 8), (1, 4, 6, 6), [0.1], host_bound=True)
    spec = make_spec(tmp_path, "device=cpu", "stage.sizes=[32]")
    measurer = point_module.PointMeasurer(spec, resolve_device("cpu", spec.gpu))
    (row,) = measurer._layer_rows([record], [point_module._BASELINE], {})
    assert row["detail"] == HOST_BOUND and row["host_bound"] is True and row["status"] == "ok"
    covered = LayerRecord(0, "conv", nn.Conv2d(3, 4, 3), (1, 3, 8, 8), (1, 4, 6, 6), [0.1], host_bound=False)
    (row,) = measurer._layer_rows([covered], [point_module._BASELINE], {})
    assert row["detail"] is None and row["host_bound"] is False


def test_without_a_head_start_no_layer_is_marked_either_way():
    """The CPU (and a pass without a head start) cannot tell: host_bound stays None (a null in the row)."""
    model, x = _two_convs(), torch.randn(1, 3, 16, 16)
    with torch.no_grad(), LayerProbe(model, torch.device("cpu")) as probe:
        probe.run(lambda: model(x))
    assert [r.host_bound for r in probe.records] == [None, None] and probe.host_bound_layers == set()


def test_no_head_start_on_the_cpu_or_when_asked_for_none():
    model = _two_convs()
    assert LayerProbe(model, torch.device("cpu")).head is None
    assert LayerProbe(model, torch.device("cuda", 0), head_start=False).head is None
    assert isinstance(LayerProbe(model, torch.device("cuda", 0)).head, HeadStart)
