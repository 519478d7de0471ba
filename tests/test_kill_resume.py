"""Never lose a point: a local sweep killed with SIGKILL at random moments, ten times, then run to the end."""

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

SIZES = list(range(32, 128, 4))  # 24 points
ARGS = [
    f"stage.sizes=[{','.join(map(str, SIZES))}]", "stage.warmup_iters=1", "stage.min_iters=3",
    "stage.max_iters=4", "stage.max_time_s=1", "stage.layer_iters=2",
    "device=cpu",  # also where a GPU exists: its faster points could end the sweep between two kills
]


def _points_on_disk(leaf: Path) -> int:
    """Rows in the points files now (a piece may be merged away while we count: count again)."""
    while True:
        try:
            return sum(pq.read_metadata(p).num_rows for p in leaf.glob("points-*.parquet")) if leaf.exists() else 0
        except FileNotFoundError:
            continue


@pytest.mark.slow
def test_sigkill_ten_times_then_finish_every_point_exactly_once(tmp_path: Path):
    results = tmp_path / "results"
    leaf = results / "stage=sanity/gpu=local/model=resnet18/algo=torch"
    env = os.environ | {"PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "harness", *ARGS, f"results_dir={results}"]
    rng = random.Random(7)
    kills = 0
    for _ in range(10):
        before = _points_on_disk(leaf)
        proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while proc.poll() is None and _points_on_disk(leaf) <= before and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.4))  # somewhere inside a point, or inside a write
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 8  # the sweep really was interrupted, again and again
    final = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert final.returncode == 0, final.stderr

    for path in leaf.glob("*.parquet"):
        pq.read_table(path)  # every file readable
    assert not [p.name for p in leaf.iterdir() if ".part-" in p.name or p.name.startswith(".tmp-")]
    points = read(results)
    assert sorted(points["input_size"]) == SIZES  # the exact set, each exactly once
    layers = read(results, "layers")
    assert len(layers) == 20 * len(SIZES) and layers.groupby(["input_size", "layer_index"]).size().max() == 1
    outcomes = [json.loads(p.read_text())["outcome"] for p in leaf.glob("run-*.json")]
    assert outcomes.count("completed") == 1 and set(outcomes) <= {"completed", "killed"}
