"""l2=cold: the last cache level flushed before each timed iteration and each layer, outside the timed interval.

The CPU path is the real one (a buffer of the last-level cache's size, read from sysfs, written through the
caches); only the sysfs folder is swapped for a small one, so that a flush is cheap here. That the flush is
outside the interval is checked on a synthetic clock (only the work moves it), so it holds on any machine.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harness.errors import ConfigError, MissingEnvironmentError
from harness.measure import cache, layers, timing
from harness.measure.cache import CacheFlush, cache_flush, flush_for, last_level_cache_bytes, parse_size
from harness.measure.layers import LayerProbe
from harness.measure.profiler import ProfileSettings, profile
from harness.measure.timing import SamplingPolicy, time_adaptively
from harness.results import read
from harness.run import runner
from tests.conftest import FAST
from tests.helpers import make_spec
from tests.test_stats_timing import FakeClock

CPU = torch.device("cpu")


def fake_sysfs(root: Path, caches: list[tuple[int, str, str]]) -> Path:
    """A cpu0/cache folder as sysfs writes it: one index<i> per (level, type, size)."""
    for i, (level, kind, size) in enumerate(caches):
        d = root / f"index{i}"
        d.mkdir(parents=True)
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    return root


@pytest.fixture
def small_llc(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> int:
    """The machine's sysfs swapped for one whose last level is 64 KiB (a flush costs nothing here)."""
    caches = [(1, "Data", "32K"), (1, "Instruction", "32K"), (2, "Unified", "64K")]
    root = fake_sysfs(tmp_path_factory.mktemp("sysfs") / "cache", caches)
    monkeypatch.setattr(cache, "SYSFS_CPU_CACHE", root)
    return 64 * 1024


def test_cache_sizes_are_read_as_sysfs_writes_them(tmp_path: Path):
    assert parse_size("491520K") == 491520 * 1024 and parse_size("32M\n") == 32 * 2**20 and parse_size("4096") == 4096
    with pytest.raises(ValueError, match="not a cache size: 'LOTS'"):
        parse_size("lots")
    root = fake_sysfs(
        tmp_path / "c", [(1, "Data", "48K"), (1, "Instruction", "64K"), (2, "Unified", "2048K"), (3, "Unified", "32M")]
    )
    assert last_level_cache_bytes(root) == (3, 32 * 2**20)
    icache_only = fake_sysfs(tmp_path / "i", [(4, "Instruction", "1G"), (2, "Data", "1M")])
    assert last_level_cache_bytes(icache_only) == (2, 2**20)  # an instruction cache is never the one flushed


def test_no_cache_information_is_a_clear_refusal(tmp_path: Path):
    with pytest.raises(MissingEnvironmentError, match=r"l2=cold on the CPU .* cannot be read from .*nowhere.*l2=warm"):
        last_level_cache_bytes(tmp_path / "nowhere")


def test_a_cpu_flush_writes_every_byte_of_a_buffer_of_the_last_level_size(small_llc: int):
    flush = cache_flush(CPU)
    assert isinstance(flush, CacheFlush) and flush.level == "L2" and flush.cache_bytes == small_llc
    assert flush.nbytes == small_llc
    flush()
    flush()
    assert bool((flush.buffer == 2).all())  # every byte read and written back by each flush
    assert "0.1 MiB written before each timed interval" in str(flush)
    assert flush_for("warm", CPU) is None and isinstance(flush_for("cold", CPU), CacheFlush)
    with pytest.raises(ValueError, match="l2='tepid': expected one of warm, cold"):
        flush_for("tepid", CPU)


def test_the_flush_runs_before_each_timed_iteration_and_outside_its_interval(monkeypatch: pytest.MonkeyPatch):
    clock = FakeClock()
    monkeypatch.setattr(timing, "time", clock)
    flushes = []

    def flush() -> None:
        flushes.append(clock.ns)
        clock.work(1.0)  # a flush far slower than the work: any of it inside an interval would show

    t = time_adaptively(lambda: clock.work(0.002), CPU, SamplingPolicy(2, 0.0, 10, 10, 60.0, 0.0), before=flush)
    assert t.n == 10 and len(flushes) == 10  # one flush per timed iteration, none in the warmup
    assert np.all(t.samples_ms == 2.0) and np.all(t.host_ms == 2.0)  # neither interval holds the flush


class _Stage(nn.Module):
    """A convolution stand-in whose forward takes 2 ms of the synthetic clock."""

    is_conv2d_stand_in = True

    def __init__(self, clock: FakeClock) -> None:
        super().__init__()
        self.clock = clock

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.work(0.002)
        return x


def test_the_layer_pass_flushes_before_each_layer_outside_its_interval(monkeypatch: pytest.MonkeyPatch):
    clock = FakeClock()
    monkeypatch.setattr(layers, "time", clock)
    model = nn.Sequential(_Stage(clock), nn.ReLU(), _Stage(clock), _Stage(clock))
    flushes = []

    def flush() -> None:
        flushes.append(clock.ns)
        clock.work(1.0)

    with LayerProbe(model, CPU, before_layer=flush) as probe:
        for _ in range(4):
            probe.run(lambda: model(torch.zeros(1, 1, 2, 2)))
    assert len(flushes) == 3 * 4  # before each of the 3 layers, in each of 4 passes
    assert [r.times_ms for r in probe.records] == [[2.0] * 4] * 3


def test_a_cold_profile_states_its_flush_and_a_warm_one_does_not(small_llc: int):
    model, x = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3)).eval(), torch.randn(1, 3, 16, 16)
    policy = SamplingPolicy(1, 0.0, 3, 3, 60.0, 0.5)
    cold = profile(model, x, ProfileSettings(policy, layer_iters=2, energy_window_s=0, l2="cold"))
    warm = profile(model, x, ProfileSettings(policy, layer_iters=2, energy_window_s=0))
    assert cold.cache_flush_bytes == small_llc and warm.cache_flush_bytes is None
    assert "cold cache: 0.1 MiB written before each iteration and layer" in str(cold)
    assert "cold cache" not in str(warm)
    assert cold.timing.n == 3 and [len(r.times_ms) for r in cold.layers] == [2, 2]


def test_a_cold_run_is_measured_stated_on_every_row_and_hashed_apart(tmp_path: Path, small_llc: int):
    spec = make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm", "l2=cold")
    assert spec.l2 == "cold" and spec.measurement_config()["l2"] == "cold"
    assert spec.config_hash() != replace(spec, l2="warm").config_hash()
    runner.run(spec)
    points, layer_rows = read(tmp_path, "points"), read(tmp_path, "layers")
    assert set(points["status"]) == {"ok"} and set(points["l2"]) == {"cold"} and set(layer_rows["l2"]) == {"cold"}
    assert set(points["cache_flush_bytes"]) == {small_llc}


def test_a_warm_run_writes_no_flush(tmp_path: Path):
    runner.run(make_spec(tmp_path, *FAST, "model=resnet18", "algo=gemm"))
    points = read(tmp_path, "points")
    assert set(points["l2"]) == {"warm"} and points["cache_flush_bytes"].isna().all()


def test_an_unknown_l2_is_refused_with_the_choices(tmp_path: Path):
    with pytest.raises(ConfigError, match="lukewarm.*cold"):
        make_spec(tmp_path, "l2=lukewarm")
