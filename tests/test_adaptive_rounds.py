"""The adaptive grid's rounds (harness.campaign.rounds): the journal, resuming a round, the budget, the SLURM
chain's decider, the status display, the refusals; and a real local campaign killed in its first round and
resumed with every point measured exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import status
from harness.campaign import rounds
from harness.campaign.adaptive import AdaptiveGrid, grid_from_stage
from harness.config.compose import compose_config
from harness.errors import ConfigError
from harness.launch.decider import decider_parameters
from harness.results import read
from harness.results.rounds import read_journal
from tests.conftest import REPO, run_cli
from tests.synthetic import point_row, write_points

# gemm is fast at small sizes, fft at large ones: they cross at 349 (harness.campaign.adaptive's tests)
CURVES = {"gemm": lambda s: 1 + 0.01 * (s - 224), "fft": lambda s: 2 + 0.002 * (s - 224)}


def configs(tmp_path: Path, *extra: str) -> list[dict]:
    base = ["stage.sizes=adaptive", "stage.adaptive.coarse=5", "stage.adaptive.resolution=8", "device=cpu"]
    return [compose_config([f"algo={a}", *base, f"results_dir={tmp_path / 'results'}", *extra]) for a in sorted(CURVES)]


class Measure:
    """The launch border: writes each config's points from the known curves (as the harness would measure
    them), skipping points already in the tree (as the harness does); records what it was asked."""

    def __init__(self, root: Path, fail_after: int | None = None, submitted: bool = False) -> None:
        self.root, self.fail_after, self.submitted = root, fail_after, submitted
        self.asked: list[tuple[str, int]] = []
        self.written: list[tuple[str, int]] = []
        self.calls = 0

    def __call__(self, cfgs: list[dict]) -> list[dict]:
        self.calls += 1
        have = set()
        if (self.root / "results").exists():
            r = read(self.root / "results")
            have = set(zip(r["algo"], r["input_size"]))
        out = []
        for c in cfgs:
            algo = c["algo"]["name"]
            for s in c["stage"]["sizes"]:
                self.asked.append((algo, s))
                if (algo, s) in have:
                    continue
                if self.fail_after is not None and len(self.written) >= self.fail_after:
                    raise RuntimeError("killed")
                run = f"run{self.calls}-{len(self.written)}"
                row = point_row(s, CURVES[algo](s), run=run, at=self.calls, stage="sanity")
                write_points(self.root / "results", [row | {"gpu": "local", "model": "resnet18", "algo": algo}])
                self.written.append((algo, s))
            out.append({"job_id": f"{100 + self.calls}_{algo}", "submitted": True} if self.submitted else {})
        return out


def test_rounds_run_to_convergence_each_point_once(tmp_path: Path):
    c = rounds.campaign_of(configs(tmp_path))
    measure = Measure(tmp_path)
    doc = rounds.advance(c, measure)
    assert doc["stopped"]["reasons"] == {"resnet18/local": "converged"}
    assert len(measure.written) == len(set(measure.written))  # no point measured twice
    first = doc["rounds"][0]["sizes"]["resnet18/local"]
    assert [s for s, *_ in first] == [224, 296, 368, 440, 512] and {k for _, k, _ in first} == {"coarse"}
    added = [(s, k) for r in doc["rounds"][1:] for s, k, _ in r["sizes"]["resnet18/local"]]
    # gemm's 1 + 0.01 (s - 224) bends on the log scale (10% off the line at 296): a curve size too
    assert {k for _, k in added} == {"crossover", "curve"}
    sizes = sorted({s for _, s in measure.written})
    below, above = max(s for s in sizes if s < 349), min(s for s in sizes if s > 349)
    assert above - below <= 8 and all(r["state"] == "done" and r["missing"] == 0 for r in doc["rounds"])
    assert read_journal(c.journal) == doc
    again = Measure(tmp_path)
    assert rounds.advance(c, again) == doc and again.calls == 0  # a stopped campaign launches nothing


def test_the_same_tree_gives_the_same_round(tmp_path: Path):
    c = rounds.campaign_of(configs(tmp_path))
    rows = []
    for algo, f in CURVES.items():
        rows += [point_row(s, f(s), stage="sanity") | {"gpu": "local", "model": "resnet18", "algo": algo}
                 for s in (224, 296, 368, 440, 512)]  # fmt: skip
    write_points(tmp_path / "results", rows)
    tree = rounds.campaign_rows(c)
    first = rounds.plan_round(c, tree, 1)
    assert first == rounds.plan_round(c, tree.sample(frac=1.0, random_state=3), 1)
    asked = {ch.size: ch.kind for ch in first[0]["resnet18/local"]}
    assert asked[332] == "crossover" and first[1] == {}


def test_a_killed_round_resumes_with_the_same_sizes_and_no_point_twice(tmp_path: Path):
    c = rounds.campaign_of(configs(tmp_path))
    with pytest.raises(RuntimeError):
        rounds.advance(c, Measure(tmp_path, fail_after=7))  # dies inside round 2 (round 1: 10 points)
    doc = read_journal(c.journal)
    assert [r["state"] for r in doc["rounds"]] == ["planned"] and doc["rounds"][0]["attempts"] == 1
    resumed = Measure(tmp_path)
    doc = rounds.advance(c, resumed)
    assert doc["rounds"][0]["attempts"] == 2 and doc["rounds"][0]["state"] == "done"
    assert len(resumed.written) == len(set(resumed.written))
    first_sizes = {s for s, *_ in doc["rounds"][0]["sizes"]["resnet18/local"]}
    assert len([w for w in resumed.written if w[1] in first_sizes]) == 3  # only what the kill left
    points = read(tmp_path / "results")
    assert not points.duplicated(["algo", "input_size"]).any() and doc["stopped"] is not None


def test_the_budget_stops_the_rounds_and_status_says_why(tmp_path: Path, capsys: pytest.CaptureFixture):
    # each point costs n x mean = 100 x 2 ms = 0.2 s here, a size 0.4 s (two algorithms): after round 1's
    # 10 points (2 s) a budget of 2.2 s has no room for one more size
    c = rounds.campaign_of(configs(tmp_path, "stage.budget_gpu_h=0.000611"))
    doc = rounds.advance(c, lambda cfgs: _with_mean(Measure(tmp_path), cfgs))
    assert doc["stopped"]["reasons"] == {"resnet18/local": "budget"} and len(doc["rounds"]) == 1
    assert status.main(["--results", str(tmp_path / "results"), "--jobs", str(tmp_path / "jobs")]) == 0
    out = capsys.readouterr().out
    assert "adaptive grid" in out and "budget" in out and "coarse: round 1" in out
    assert status.main(["--results", str(tmp_path / "results"), "--jobs", str(tmp_path / "jobs"), "--json"]) == 0
    (summary,) = json.loads(capsys.readouterr().out)["adaptive"]
    assert summary["rounds"] == 1 and summary["budget_left_gpu_h"] == pytest.approx(0.000611 - 10 * 0.2 / 3600)


def _with_mean(measure: Measure, cfgs: list[dict]) -> list[dict]:
    out = measure(cfgs)
    r = read(measure.root / "results")  # the rows the store wrote get a mean: what they cost
    for (run, stage, gpu, model, algo), g in r.groupby(["run_id", "stage", "gpu", "model", "algo"]):
        rows = [
            point_row(int(s), float(p), run=run, stage=stage)
            | {"gpu": gpu, "model": model, "algo": algo, "mean_ms": 2.0}
            for s, p in zip(g["input_size"], g["p50_ms"])
        ]
        write_points(measure.root / "results", rows)
    return out


def test_on_slurm_a_round_ends_with_the_decider_chained_after_it(tmp_path: Path):
    c = rounds.campaign_of(configs(tmp_path))
    chained = []
    doc = rounds.advance(c, Measure(tmp_path, submitted=True), lambda jobs, j: chained.append((jobs, j)) or "999")
    (r,) = doc["rounds"]
    assert r["state"] == "submitted" and r["decider"] == "999" and chained == [(r["jobs"], c.journal)]
    params = decider_parameters(r["jobs"], {"account": "acct"})
    assert params["slurm_additional_parameters"] == {"dependency": "afterany:101"}
    assert params["slurm_account"] == "acct" and params["cpus_per_task"] == 1
    # the decider job: the jobs have written their points, it finds the round done and submits the next
    doc = rounds.advance(
        rounds.campaign_from_journal(c.journal), Measure(tmp_path, submitted=True), lambda j, p: "1000"
    )
    assert [r["state"] for r in doc["rounds"]] == ["done", "submitted"] and doc["rounds"][1]["decider"] == "1000"


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("stage.sizes=adaptiv", "stage.sizes='adaptiv' is not valid"),
        ("stage.budget_gpu_h=0", "stage.budget_gpu_h=0 is not valid"),
        ("stage.budget_gpu_h=-2", "stage.budget_gpu_h=-2 is not valid"),
        ("stage.adaptive.resolution=1000", "stage.adaptive.resolution=1000 is not valid"),
    ],
)
def test_bad_input_is_one_line_naming_the_value(tmp_path: Path, override: str, named: str):
    extra = [] if override.startswith("stage.sizes") else ["stage.sizes=adaptive"]
    proc = run_cli(*extra, override, "device=cpu", f"results_dir={tmp_path / 'r'}", cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and named in lines[0], proc.stderr
    assert "adaptive" in lines[0] or "budget" in lines[0] or "integer" in lines[0]


def test_an_unknown_grid_parameter_is_named_with_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown key stage.adaptive.bogus; valid keys: start, stop"):
        grid_from_stage({"adaptive": {"bogus": 1}})
    assert grid_from_stage({"adaptive": {"coarse": 3}, "budget_gpu_h": 1.5}) == AdaptiveGrid(coarse=3, budget_gpu_h=1.5)


@pytest.mark.slow
def test_a_real_campaign_killed_in_its_round_resumes_every_point_once(tmp_path: Path):
    results = tmp_path / "results"
    args = [
        "-m", "algo=gemm,torch", "stage.sizes=adaptive", "stage.adaptive.start=32", "stage.adaptive.stop=64",
        "stage.adaptive.coarse=3", "stage.adaptive.max_rounds=1", "stage.warmup_iters=1", "stage.warmup_s=0.5",
        "stage.min_iters=3", "stage.max_iters=3", "stage.layer_iters=1", "stage.energy_window_s=0",
        "stage.verify_every_point=false", "device=cpu", f"results_dir={results}",
    ]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "harness", *args], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not list(results.glob("stage=sanity/gpu=local/model=resnet18/*/points-*")):
        assert proc.poll() is None, "the campaign ended before it could be killed"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (journal,) = results.glob("stage=sanity/_rounds/*.json")
    assert json.loads(journal.read_text())["rounds"][0]["state"] == "planned"
    done = run_cli(*args, cwd=tmp_path, fresh=True, timeout=600)
    assert done.returncode == 0, done.stderr
    doc = json.loads(journal.read_text())
    assert doc["rounds"][0]["attempts"] == 2 and doc["rounds"][0]["state"] == "done"
    assert doc["stopped"]["reasons"] == {"resnet18/local": "max_rounds"}
    points = read(results)
    assert sorted(points.groupby("algo")["input_size"].apply(sorted).to_dict().items()) == [
        ("gemm", [32, 48, 64]),
        ("torch", [32, 48, 64]),
    ]
    assert not points.duplicated(["algo", "input_size"]).any()
