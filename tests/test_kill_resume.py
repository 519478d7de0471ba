"""Never lose a point: a local sweep killed with SIGKILL at random moments, five times, then run to the end.

The points are paced in wall time (stage.warmup_s: no point is shorter than POINT_FLOOR_S, on any machine),
so the kills land inside the sweep however fast or slow the machine is: each attempt is killed at a random
moment within one point's floor after a new point is seen on disk (inside the next point, or its write), so
an attempt writes one point, or two, and the sweep has more points than the attempts can write.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.results import read
from tests.conftest import REPO

KILLS = 5
SIZES = list(range(32, 32 + 4 * 3 * KILLS, 4))  # 15 points: three per kill, more than the attempts write
POINT_FLOOR_S = 0.5  # stage.warmup_s: no point is shorter, however fast the machine
ARGS = [
    f"stage.sizes=[{','.join(map(str, SIZES))}]",
    "stage.warmup_iters=1",
    f"stage.warmup_s={POINT_FLOOR_S}",
    "stage.min_iters=3",
    "stage.max_iters=3",
    "stage.max_time_s=1",
    "stage.layer_iters=1",
    "stage.verify_every_point=false",  # the first point of each attempt is verified; the rest need not be
    "device=cpu",  # also where a GPU exists: the same model, the same pace
]
HANG_S = 600  # only catches a hang: a start and a point take seconds, a minute on a very busy machine


def _points_on_disk(leaf: Path) -> int:
    """Rows in the points files now (a piece may be merged away while we count: count again)."""
    while True:
        try:
            return sum(pq.read_metadata(p).num_rows for p in leaf.glob("points-*.parquet")) if leaf.exists() else 0
        except FileNotFoundError:
            continue


@pytest.mark.slow
def test_sigkill_repeatedly_then_finish_every_point_exactly_once(tmp_path: Path):
    results = tmp_path / "results"
    leaf = results / "stage=sanity/gpu=local/model=resnet18/algo=torch"
    env = os.environ | {"PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "harness", *ARGS, f"results_dir={results}"]
    rng = random.Random(7)
    for attempt in range(KILLS):
        before = _points_on_disk(leaf)
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + HANG_S
        while proc.poll() is None and _points_on_disk(leaf) <= before:
            assert time.monotonic() < deadline, f"attempt {attempt}: no new point in {HANG_S} s"
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, POINT_FLOOR_S))  # somewhere inside the next point, or inside a write
        assert proc.poll() is None, f"attempt {attempt} ended before its kill (exit {proc.returncode})"
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL
    assert _points_on_disk(leaf) < len(SIZES)  # the sweep really was interrupted, again and again
    final = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=HANG_S)
    assert final.returncode == 0, final.stderr

    for path in leaf.glob("*.parquet"):
        pq.read_table(path)  # every file readable
    assert not [p.name for p in leaf.iterdir() if ".part-" in p.name or p.name.startswith(".tmp-")]
    points = read(results)
    assert sorted(points["input_size"]) == SIZES  # the exact set, each exactly once
    layers = read(results, "layers")
    assert len(layers) == 20 * len(SIZES) and layers.groupby(["input_size", "layer_index"]).size().max() == 1
    outcomes = [json.loads(p.read_text())["outcome"] for p in leaf.glob("run-*.json")]
    assert outcomes.count("completed") == 1 and outcomes.count("killed") == KILLS and len(outcomes) == KILLS + 1
