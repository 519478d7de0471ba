"""Launching the adaptive grid (``stage.sizes=adaptive``): its rounds (harness.campaign.rounds) with the
ordinary launch path, and on SLURM the decider: a small CPU job chained after a round's jobs with a
dependency (``afterany``: it runs however they end) that runs harness.launch.decider_job, which reads the
tree, decides the next round, submits it and chains the next decider. Nothing waits on the login node
between rounds.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import submitit
from rich.console import Console

from harness.campaign import rounds

log = logging.getLogger(__name__)

DECIDER_TIMEOUT_MIN = 20  # reading a tree and submitting: minutes at the most
DECIDER_MEM_GB = 4


def run_adaptive(configs: list[dict[str, Any]], launch: rounds.Launch) -> list[dict[str, Any]]:
    """``python -m harness ... stage.sizes=adaptive``: the campaign of these configs, from where its journal
    stands (a second call with the same command resumes it); ``launch``: the ordinary launch path
    (harness.launch.dispatch.launch_configs), which each round's configs go through."""
    campaign = rounds.campaign_of(configs)
    doc = rounds.advance(campaign, launch, lambda jobs, journal: submit_decider(jobs, journal, configs))
    log.info("adaptive grid journal: %s", campaign.journal)
    return [{"campaign": campaign.campaign_id, "journal": str(campaign.journal), **rounds.summary(doc)}]


def dry_run_adaptive(configs: list[dict[str, Any]], launch: rounds.Launch) -> list[dict[str, Any]]:
    """``dry_run=true`` with ``stage.sizes=adaptive``: the dry run of the next round only (the coarse grid of
    round 1 on an empty tree), through ``launch`` with dry_run kept; nothing is written, not even the journal.
    Later rounds depend on what this one measures, so they are not in the estimate, and the log says so."""
    campaign = rounds.campaign_of(configs)
    doc = rounds.read_journal(campaign.journal) or rounds.new_journal(campaign)
    done = [r for r in doc["rounds"] if r["state"] == "done"]
    if len(done) < len(doc["rounds"]):  # a round launched but unfinished: its sizes are what would run
        sizes, stops = doc["rounds"][-1]["sizes"], {}
    else:
        asks, stops = rounds.plan_round(campaign, rounds.campaign_rows(campaign), len(done))
        sizes = {g: [[ch.size] for ch in chs] for g, chs in asks.items()}
    round_configs = rounds.round_configs(campaign, sizes)
    stopped = ", ".join(f"{k} ({v})" for k, v in stops.items()) or "none"
    Console().print(  # the dry run's output, which the user asked to see
        f"dry run of an adaptive grid: round {len(done) + 1} only ({len(round_configs)} configs; groups stopped: "
        f"{stopped}); the sizes of later rounds depend on its measurements and are not in this estimate"
    )
    return launch(round_configs) if round_configs else []


def decider_parameters(job_ids: list[str], launcher: dict[str, Any] | None) -> dict[str, Any]:
    """submitit's parameters of the decider job: small, CPU only, after every job of the round."""
    launcher = launcher or {}
    arrays = sorted({j.split("_")[0] for j in job_ids})  # an array's id waits for all of its tasks
    params: dict[str, Any] = {
        "name": "harness-adaptive-decider",
        "timeout_min": DECIDER_TIMEOUT_MIN,
        "mem_gb": DECIDER_MEM_GB,
        "cpus_per_task": 1,
        "slurm_additional_parameters": {"dependency": "afterany:" + ":".join(arrays)},
    }
    if launcher.get("account"):
        params["slurm_account"] = launcher["account"]
    if launcher.get("qos"):
        params["slurm_qos"] = launcher["qos"]
    return params


def submit_decider(job_ids: list[str], journal: Path, configs: list[dict[str, Any]]) -> str:
    """Submit the decider of ``journal`` after ``job_ids`` (``python -m harness.launch.decider_job JOURNAL``
    in a job of its own); its job id."""
    launcher = configs[0].get("launcher") or {}
    folder = Path(str(launcher.get("folder", "jobs"))).resolve() / "adaptive" / journal.stem
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster="slurm")
    executor.update_parameters(**decider_parameters(job_ids, launcher))
    command = submitit.helpers.CommandFunction([sys.executable, "-m", "harness.launch.decider_job", str(journal)])
    job = executor.submit(command)
    log.info("adaptive grid: decider job %s after %s", job.job_id, ", ".join(job_ids))
    return str(job.job_id)
