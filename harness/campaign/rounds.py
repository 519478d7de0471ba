"""The adaptive grid's rounds (``stage.sizes=adaptive``): each round reads the tree, decides the next sizes
(harness.campaign.adaptive: the same tree gives the same sizes), records them with their reasons in the
journal (harness.results.rounds) and launches them through the ordinary path, with the round's sizes as a
list. Here (no SLURM) the rounds follow one another in this process; on SLURM the round's jobs are
submitted and a small decider job, chained after them with a dependency, runs the next step
(harness.launch.decider): no process waits on the login node.

Never a point lost or measured twice: a round is ``done`` only once every point it planned is in the tree
(any status); a round found unfinished (a killed process, a failed job) is launched again with the same
sizes, and the harness skips the points already written. After MAX_ATTEMPTS launches a round is closed with
what it has (``missing`` says how many points).

The launcher is passed in (``launch``: harness.launch.dispatch.launch_configs; ``after``: the decider's
submission), so that this package does not import the launch package that calls it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from harness.campaign.adaptive import AdaptiveGrid, Choice, decide, grid_from_stage, group_frames
from harness.config.sizes import is_adaptive
from harness.config.spec import run_spec_from_dict
from harness.errors import ConfigError
from harness.results.read import latest, read
from harness.results.rounds import journal_path, read_journal, summary, write_journal

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3  # launches of one round before it is closed with the points it has
Launch = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
After = Callable[[list[str], Path], str]  # (job ids of the round, the journal) -> the decider's job id


def is_adaptive_config(config: dict[str, Any]) -> bool:
    return is_adaptive((config.get("stage") or {}).get("sizes"))


@dataclass(frozen=True)
class Member:
    """One config of the campaign and where its rows are: its model, GPU type and algorithm."""

    config: dict[str, Any]
    model: str
    gpu: str
    algo: str
    batch_sizes: tuple[int, ...]


@dataclass(frozen=True)
class Campaign:
    """The configs of one ``stage.sizes=adaptive`` command: one stage, one results tree, one grid."""

    campaign_id: str
    stage: str
    results_dir: Path
    grid: AdaptiveGrid
    warmup_s: float
    members: tuple[Member, ...]

    @property
    def journal(self) -> Path:
        return journal_path(self.results_dir, self.stage, self.campaign_id)

    def groups(self) -> list[tuple[str, str]]:
        return sorted({(m.model, m.gpu) for m in self.members})


def campaign_of(configs: list[dict[str, Any]]) -> Campaign:
    """The campaign of resolved configs that all say stage.sizes=adaptive; every config checked here (with
    the range's first size standing in for the sizes), before anything is launched."""
    stages = {json.dumps(c["stage"], sort_keys=True, default=str) for c in configs}
    if len(stages) > 1:
        raise ConfigError("stage.sizes=adaptive: every run of the command must have the same stage settings")
    stage = configs[0]["stage"]
    grid = grid_from_stage(stage)
    members = []
    dirs = {str(Path(str(c.get("results_dir", "results"))).resolve()) for c in configs}
    for c in configs:
        spec = run_spec_from_dict(with_sizes(c, [grid.start]))
        absolute = copy.deepcopy(c) | {"results_dir": str(spec.results_dir.resolve())}  # the decider runs elsewhere
        members.append(Member(absolute, spec.model.name, spec.gpu.name, spec.algo, spec.batch_sizes))
    if len(dirs) > 1:
        raise ConfigError(f"stage.sizes=adaptive: one results_dir for the whole command, not {sorted(dirs)}")
    ident = {
        "stage": stage.get("name"),
        "results_dir": next(iter(dirs)),
        "grid": asdict(grid),
        "members": sorted((m.model, m.gpu, m.algo) for m in members),
    }
    cid = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:12]
    members.sort(key=lambda m: (m.model, m.gpu, m.algo))
    return Campaign(cid, str(stage.get("name")), Path(next(iter(dirs))), grid, float(stage.get("warmup_s", 0) or 0),
                    tuple(members))  # fmt: skip


def with_sizes(config: dict[str, Any], sizes: list[int]) -> dict[str, Any]:
    out = copy.deepcopy(config)
    out["stage"]["sizes"] = [int(s) for s in sizes]
    return out


def point_cost_s(rows: pd.DataFrame, warmup_s: float = 0.0) -> pd.Series:
    """What measuring each row took, in seconds: its recorded wall time (``point_wall_s``, every phase of the
    point, what harness.campaign.cost fits) where the row has one; for rows older than that column, a lower
    bound from what the row says: its timed iterations (n x mean), its energy window and the stage's warm-up."""
    timed = rows["n"].astype(float).fillna(0) * rows["mean_ms"].astype(float).fillna(0) / 1e3
    window = rows["energy_window_s"].astype(float).fillna(0) if "energy_window_s" in rows else 0.0
    bound = timed + window + warmup_s
    if "point_wall_s" not in rows:
        return bound
    return rows["point_wall_s"].astype(float).fillna(bound)


def campaign_rows(c: Campaign) -> pd.DataFrame:
    """The campaign's rows in the tree (latest wins), or an empty frame before the first is written."""
    try:
        rows = read(c.results_dir)
    except (FileNotFoundError, OSError, ValueError):
        return pd.DataFrame(columns=["stage", "model", "gpu", "algo", "input_size", "batch_size", "status"])
    if rows.empty:
        return rows
    wanted = {(c.stage, m.model, m.gpu, m.algo) for m in c.members}
    keys = zip(rows["stage"].astype(str), rows["model"].astype(str), rows["gpu"].astype(str), rows["algo"].astype(str))
    keep = [k in wanted for k in keys]
    return latest(rows[keep]).reset_index(drop=True)


def _group_of(rows: pd.DataFrame, model: str, gpu: str) -> pd.DataFrame:
    if rows.empty:
        return rows
    return rows[(rows["model"] == model) & (rows["gpu"] == gpu)]


def _key(model: str, gpu: str) -> str:
    return f"{model}/{gpu}"


def plan_round(c: Campaign, rows: pd.DataFrame, rounds_done: int) -> tuple[dict[str, list[Choice]], dict[str, str]]:
    """The next round: per group (model/gpu) the sizes with their reasons, and per group that asks for none,
    why (a stop reason). Pure in the rows: the same tree gives the same round."""
    spent_h = float(point_cost_s(rows, c.warmup_s).sum()) / 3600 if len(rows) else 0.0
    active = c.groups()
    asks: dict[str, list[Choice]] = {}
    stops: dict[str, str] = {}
    budget = c.grid.budget_gpu_h
    for model, gpu in active:
        grows = _group_of(rows, model, gpu)
        grid = c.grid
        size_cost = None
        if budget is not None:
            left = max(0.0, budget - spent_h)
            grid = replace(c.grid, budget_gpu_h=spent_h + left / len(active))  # the budget left, shared evenly
            if len(grows):
                per_size = point_cost_s(grows, c.warmup_s).groupby(grows["input_size"]).sum()
                size_cost = float(per_size.mean()) / 3600
        chosen: dict[int, Choice] = {}
        stop = None
        parts = list(group_frames(grows)) if len(grows) else [((), grows)]
        for _, frame in parts:  # one decision per batch size; a size any of them asks for is measured for all
            d = decide(frame, grid, rounds_done, spent_h, size_cost)
            stop = stop or d.stop
            for ch in d.sizes:
                chosen.setdefault(ch.size, ch)
        if chosen:
            asks[_key(model, gpu)] = sorted(chosen.values(), key=lambda ch: ch.size)
        else:
            stops[_key(model, gpu)] = stop or "converged"
    return asks, stops


def planned_points(c: Campaign, asks: dict[str, list[Any]]) -> set[tuple]:
    out = set()
    for m in c.members:
        for size in asks.get(_key(m.model, m.gpu), []):
            s = size[0] if isinstance(size, (list, tuple)) else size
            for b in m.batch_sizes:
                out.add((m.model, m.gpu, m.algo, int(s), int(b)))
    return out


def missing_points(c: Campaign, rows: pd.DataFrame, asks: dict[str, list[Any]]) -> int:
    have = set()
    if len(rows):
        sizes, batches = rows["input_size"].astype(int), rows["batch_size"].astype(int)
        have = set(zip(rows["model"], rows["gpu"], rows["algo"], sizes, batches))
    return len(planned_points(c, asks) - have)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def round_configs(c: Campaign, asks: dict[str, list[Any]]) -> list[dict[str, Any]]:
    out = []
    for m in c.members:
        sizes = [s[0] for s in asks.get(_key(m.model, m.gpu), [])]
        if sizes:
            out.append(with_sizes(m.config, sizes))
    return out


def new_journal(c: Campaign) -> dict[str, Any]:
    return {
        "campaign": c.campaign_id,
        "stage": c.stage,
        "created_at": _now(),
        "grid": asdict(c.grid),
        "groups": [_key(*g) for g in c.groups()],
        "algos": sorted({m.algo for m in c.members}),
        "configs": [m.config for m in c.members],
        "rounds": [],
        "stopped": None,
    }


def advance(c: Campaign, launch: Launch, after: After | None = None) -> dict[str, Any]:
    """Run the campaign from where its journal stands: finish an unfinished round, then decide and launch
    rounds until every group stops (here) or a round has gone to SLURM (``after`` chains the decider).
    Returns the journal."""
    doc = read_journal(c.journal) or new_journal(c)
    while True:
        rows = campaign_rows(c)
        rounds = doc["rounds"]
        if rounds and rounds[-1]["state"] != "done":
            r = rounds[-1]
            missing = missing_points(c, rows, r["sizes"])
            if missing == 0 or r["attempts"] >= MAX_ATTEMPTS:
                r.update(state="done", missing=missing, done_at=_now())
                if missing:
                    log.warning("adaptive round %d closed with %d point(s) missing", r["round"], missing)
                write_journal(doc, c.journal)
                continue
            log.info("adaptive round %d: %d point(s) not in the tree yet: launching it again", r["round"], missing)
            if _launch(c, doc, r, launch, after):
                return doc
            continue
        if doc["stopped"] is not None:
            return doc
        done = len(rounds)
        asks, stops = plan_round(c, rows, done)
        spent_h = float(point_cost_s(rows, c.warmup_s).sum()) / 3600 if len(rows) else 0.0
        if not asks:
            doc["stopped"] = {"at": _now(), "reasons": stops, "spent_gpu_h": spent_h, "points": len(rows)}
            write_journal(doc, c.journal)
            log.info("adaptive grid %s stopped after %d round(s): %s", c.campaign_id, done, stops)
            return doc
        r = {
            "round": done + 1,
            "state": "planned",
            "attempts": 0,
            "planned_at": _now(),
            "points_before": int(len(rows)),
            "spent_gpu_h_before": spent_h,
            "budget_left_gpu_h": None if c.grid.budget_gpu_h is None else max(0.0, c.grid.budget_gpu_h - spent_h),
            "sizes": {g: [[ch.size, ch.kind, ch.why] for ch in chs] for g, chs in asks.items()},
            "groups_stopped": stops,
            "jobs": [],
        }
        rounds.append(r)
        write_journal(doc, c.journal)  # the decision first: a kill from here on resumes this round
        if _launch(c, doc, r, launch, after):
            return doc


def _launch(c: Campaign, doc: dict[str, Any], r: dict[str, Any], launch: Launch, after: After | None) -> bool:
    """Launch round ``r``; True where it went to SLURM (the decider goes on from there), False where it ran
    here."""
    r["attempts"] += 1
    write_journal(doc, c.journal)
    outcomes = launch(round_configs(c, r["sizes"]))
    jobs = [str(o["job_id"]) for o in outcomes if o.get("submitted")]
    if not jobs:
        return False
    r.update(state="submitted", jobs=r["jobs"] + jobs)
    if after is None:
        raise ConfigError("stage.sizes=adaptive on SLURM needs the decider job (harness.launch.decider)")
    r["decider"] = after(jobs, c.journal)
    write_journal(doc, c.journal)
    return True


def campaign_from_journal(path: Path) -> Campaign:
    """The campaign a journal was written for (what the decider job runs)."""
    doc = read_journal(path)
    if doc is None:
        raise ConfigError(f"no adaptive grid journal at {path}")
    return campaign_of(doc["configs"])


__all__ = [
    "Campaign",
    "advance",
    "campaign_from_journal",
    "campaign_of",
    "is_adaptive_config",
    "plan_round",
    "point_cost_s",
    "summary",
]
