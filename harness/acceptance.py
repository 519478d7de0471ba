"""`python -m harness.acceptance`: every check of GPU-CHECKS.md in one command, one Markdown verdict.

On a CUDA machine, in under 10 minutes on an H100:

1. the GPU test suite (``pytest -m gpu``, in a subprocess; its JUnit XML read back);
2. a short real sweep through ``harness.run.runner.run``: vgg16, resnet50 and alexnet at two input sizes, every
   algorithm cuDNN runs plus ``torch``, in four configurations (fp32 strict FMA with fallback none and torch,
   fp32 tensor-op (TF32), fp16 tensor-op), into ``jobs/acceptance-<UTC timestamp>/results``;
   (timed as CUDA graphs: graph=auto, the default on a GPU);
3. extra runs: guess and torch timed eagerly (graph=false), the same point twice, an energy window, and a
   batch size that runs out of memory;
4. checks with goals (correctness, support matrix, cv, same point twice, guess/torch, energy counter vs
   integral, OOM, launch-bound points, errors);
5. ``docs/validation/<device-slug>-<YYYY-MM-DD>.md``: environment, commands, checks, detail tables.

Exit code 0 when every check passes, 1 otherwise, 2 without a CUDA GPU (nothing run, nothing written).

The GPU work (the pytest subprocess, the runner calls) is thin; the checks are pure functions over point
rows (dicts as ``RunResult.points`` holds them, or a DataFrame read back from the store) returning
``Check`` records, and the Markdown is a pure function of the checks and an environment dict.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import shlex
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from harness import validate
from harness.algorithms import CUDNN_ALGORITHMS
from harness.cli import ArgumentParser, command
from harness.config.spec import CONF_DIR, RunSpec, run_spec_from_dict
from harness.errors import MissingEnvironmentError
from harness.measure.device import what_this_machine_has
from harness.results.uncertainty import between_process, log_se

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parent.parent
PASS, FAIL, INFO = "PASS", "FAIL", "INFO"
Row = dict[str, Any]

# ---- what is measured ------------------------------------------------------------------------------------

MODELS = ("vgg16", "resnet50", "alexnet")
SIZES = (128, 224)
ALGOS = (*(a for a in CUDNN_ALGORITHMS if a != "direct"), "torch")  # cuDNN does not implement DIRECT
QUICK_MODEL, QUICK_SIZE = "resnet50", 224  # --quick; also the point of the "same point twice" run

# Short points: the sanity stage with few iterations, verification at every point, no energy window.
COMMON = {
    "stage": "sanity",
    "stage.min_iters": "10",
    "stage.max_iters": "30",
    "stage.max_time_s": "1",
    "stage.layer_iters": "8",  # layer intervals need 6 or more (harness.measure.stats.MIN_SAMPLES)
    "stage.energy_window_s": "0",
    "stage.verify_every_point": "true",
    "gpu": "local",
    "device": "cuda",
}
ENERGY_WINDOW_S = 3
OOM_BATCHES = (1, 16384)  # vgg16's first activation at batch 16384, 224 px, fp32: 16384*64*224*224*4 B = 210 GB

# Goals (GPU-CHECKS.md)
CV_GOAL = 0.02
REPEAT_GOAL = 0.03
REPEAT_PROCESSES = 3  # the "same point twice" run measures the point again in this many separate processes
GUESS_TORCH_GOAL = 1.05
ENERGY_GOAL = 0.10

# Budget (seconds on an H100; conservative): what the estimate prints, and the reserve kept for the extras.
SECONDS_PER_POINT = 0.8
SECONDS_PER_JOB = 1.0
SECONDS_GPU_TESTS = 120.0
SECONDS_EXTRAS = 60.0  # the repeat, energy and OOM runs; the eager runs are counted per point
SECONDS_PER_PROCESS = 15.0  # a spawned interpreter's start: imports, CUDA context, the model (repeats)
SECONDS_REPORT = 10.0
DEFAULT_BUDGET_S = 570.0
TESTS_TIMEOUT_S = 300

# The acceptance command's own GPU test runs this command: it must not run inside it (recursion).
SELF_TEST = "tests/test_acceptance.py::test_quick_acceptance_on_gpu"
INSIDE_ENV = "HARNESS_ACCEPTANCE_RUNNING"


@dataclass(frozen=True)
class Config:
    """A measurement configuration of the sweep: data type, math type, fallback policy."""

    dtype: str
    math: str
    fallback: str

    @property
    def label(self) -> str:
        return f"{self.dtype} {self.math} fallback={self.fallback}"

    def overrides(self) -> dict[str, str]:
        return {"dtype": self.dtype, "math": self.math, "fallback": self.fallback}


BASE = Config("float32", "fma", "none")
CONFIGS = (
    BASE,
    Config("float32", "fma", "torch"),
    Config("float32", "tensor_op", "none"),
    Config("float16", "tensor_op", "none"),
)


@dataclass(frozen=True)
class Job:
    """One call of ``harness.run.runner.run``: a model x algorithm x configuration over some sizes."""

    phase: str  # sweep | eager | repeat | energy | oom
    model: str
    algo: str
    sizes: tuple[int, ...]
    config: Config = BASE
    batches: tuple[int, ...] = (1,)
    extra: tuple[tuple[str, str], ...] = ()  # overrides on top of COMMON and the fields above

    @property
    def label(self) -> str:
        sizes = "/".join(map(str, self.sizes))
        batches = f" batch {'/'.join(map(str, self.batches))}" if self.batches != (1,) else ""
        return f"{self.phase}: {self.model} {self.algo} {sizes} px{batches} [{self.config.label}]"

    def points(self) -> int:
        return len(self.sizes) * len(self.batches) * int(dict(self.extra).get("repeats", "1"))

    def overrides(self, results: Path) -> list[str]:
        """The job as `python -m harness` overrides; each key once."""
        values = COMMON | {
            "model": self.model,
            "algo": self.algo,
            "stage.sizes": _list(self.sizes),
            "batch_size": _list(self.batches) if len(self.batches) > 1 else str(self.batches[0]),
        }
        values |= self.config.overrides() | dict(self.extra) | {"results_dir": override_value(str(results))}
        return [f"{k}={v}" for k, v in values.items()]


def _list(values: Iterable[int]) -> str:
    return "[" + ",".join(map(str, values)) + "]"


@dataclass(frozen=True)
class Plan:
    models: tuple[str, ...]
    sizes: tuple[int, ...]
    algos: tuple[str, ...] = ALGOS
    configs: tuple[Config, ...] = CONFIGS

    def sweep_jobs(self) -> list[Job]:
        """Configuration by configuration, so that a sweep cut short by the budget covers whole configurations."""
        return [Job("sweep", m, a, self.sizes, c) for c in self.configs for m in self.models for a in self.algos]

    def points(self) -> int:
        return len(self.models) * len(self.sizes) * len(self.algos) * len(self.configs)


def make_plan(quick: bool) -> Plan:
    return Plan((QUICK_MODEL,), (QUICK_SIZE,)) if quick else Plan(MODELS, SIZES)


def extra_jobs(plan: Plan) -> list[Job]:
    """guess and torch timed eagerly (the sweep times CUDA graphs, the default on a GPU: this is what an eager
    caller waits for, the host's issuing included), the same point twice (a sweep point measured again), an
    energy window, and a batch that runs out of memory."""
    again = (("remeasure", "true"),)  # a new run measures even what the store already has
    eager = [
        Job("eager", m, a, plan.sizes, BASE, extra=(("graph", "false"), *again))
        for m in plan.models
        for a in ("guess", "torch")
    ]
    return [
        *eager,
        Job("repeat", QUICK_MODEL, "guess", (QUICK_SIZE,), BASE, extra=(*again, ("repeats", str(REPEAT_PROCESSES)))),
        Job(
            "energy",
            QUICK_MODEL,
            "torch",
            (QUICK_SIZE,),
            BASE,
            extra=(("stage.energy_window_s", str(ENERGY_WINDOW_S)), *again),
        ),
        Job("oom", "vgg16", "torch", (224,), BASE, OOM_BATCHES, again),
    ]


def extras_s(plan: Plan) -> float:
    """What the extra runs should take on an H100 (what the sweep leaves them from the budget)."""
    eager = [j for j in extra_jobs(plan) if j.phase == "eager"]
    return (
        SECONDS_EXTRAS
        + sum(j.points() for j in eager) * SECONDS_PER_POINT
        + len(eager) * SECONDS_PER_JOB
        + REPEAT_PROCESSES * SECONDS_PER_PROCESS
    )


def estimate_s(plan: Plan) -> float:
    """What the whole command should take on an H100, from conservative per-point and per-job costs."""
    return (
        SECONDS_GPU_TESTS
        + plan.points() * SECONDS_PER_POINT
        + len(plan.sweep_jobs()) * SECONDS_PER_JOB
        + extras_s(plan)
        + SECONDS_REPORT
    )


# ---- composing configs (Hydra, as tests/helpers.py; plain YAML where Hydra is not installed) ---------------


def override_value(text: str) -> str:
    """A value as a Hydra override writes it: bare where that is safe, else single-quoted."""
    if re.fullmatch(r"[\w./+-]+", text):
        return text
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def yaml_value(text: str) -> Any:
    """An override's value as Hydra reads it, for the values this module writes (numbers, bools, lists, strings)."""
    import yaml

    if len(text) >= 2 and text[0] == text[-1] == "'":
        return text[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    return yaml.safe_load(text)


def compose_config(overrides: Sequence[str]) -> dict[str, Any]:
    """The resolved config of ``python -m harness OVERRIDES`` (Hydra's compose API, as the CLI sees it)."""
    try:
        from hydra import compose, initialize_config_dir
        from omegaconf import OmegaConf
    except ImportError:  # GPU-CHECKS.md: the measuring core runs without Hydra
        log.info("Hydra is not installed: composing conf/ with plain YAML")
        return compose_plain(overrides)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=list(overrides))
    return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]


def compose_plain(overrides: Sequence[str], conf_dir: Path = CONF_DIR) -> dict[str, Any]:
    """conf/config.yaml with its group defaults and ``overrides`` applied, without Hydra.

    Enough for this module's overrides: group choices (``model=vgg16``) and values of existing keys
    (``stage.sizes=[224]``); tests/test_acceptance.py checks it against Hydra's composition.
    """
    import yaml

    root = yaml.safe_load((conf_dir / "config.yaml").read_text())
    groups = [next(iter(d.items())) for d in root.pop("defaults") if isinstance(d, dict) and "/" not in next(iter(d))]
    root.pop("hydra", None)
    choices = {g: str(c) for g, c in groups}
    values = []
    for override in overrides:
        key, _, text = override.partition("=")
        if key in choices:
            choices[key] = text
        else:
            values.append((key, yaml_value(text)))
    cfg = {g: yaml.safe_load((conf_dir / g / f"{c}.yaml").read_text()) or {} for g, c in choices.items()} | root
    for key, value in values:
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node[p]
        if leaf not in node:
            raise KeyError(f"override {key}: no such key in conf/")
        node[leaf] = value
    return cfg


# ---- the GPU work (thin) -----------------------------------------------------------------------------------


@dataclass
class SuiteReport:
    """What the GPU test suite did, from its JUnit XML."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    cases: list[tuple[str, str, str]] = field(default_factory=list)  # (test, passed|failed|skipped, message)
    returncode: int | None = None
    note: str | None = None  # why there is no (complete) report: a timeout, no XML

    def names(self, outcome: str) -> list[str]:
        return [f"{name}: {msg}" if msg else name for name, o, msg in self.cases if o == outcome]


def _first_line(text: str | None, limit: int = 300) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def parse_junit(xml_text: str) -> SuiteReport:
    """Counts and names from pytest's JUnit XML (a failure or error in any phase counts as failed)."""
    report = SuiteReport()
    for case in ET.fromstring(xml_text).iter("testcase"):
        name = "::".join(p for p in (case.get("classname"), case.get("name")) if p)
        bad = case.find("failure")
        bad = bad if bad is not None else case.find("error")
        skip = case.find("skipped")
        if bad is not None:
            outcome, node = "failed", bad
        elif skip is not None:
            outcome, node = "skipped", skip
        else:
            outcome, node = "passed", None
        msg = _first_line(node.get("message") or node.text) if node is not None else ""
        report.cases.append((name, outcome, msg))
    counts = Counter(o for _, o, _ in report.cases)
    report.passed, report.failed, report.skipped = counts["passed"], counts["failed"], counts["skipped"]
    return report


def gpu_test_command(junit: Path) -> list[str]:
    return [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-rs", f"--junitxml={junit}", "--deselect", SELF_TEST]


def run_gpu_tests(junit: Path, output: Path, timeout_s: float = TESTS_TIMEOUT_S) -> SuiteReport:
    """``pytest -m gpu`` in a subprocess at the repository root; its output goes to ``output``."""
    cmd = gpu_test_command(junit)
    env = os.environ | {INSIDE_ENV: "1"}
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        output.write_text(_text(e.stdout) + _text(e.stderr))
        return SuiteReport(note=f"pytest did not finish within {timeout_s:g} s (output: {output})")
    output.write_text(proc.stdout + proc.stderr)
    if not junit.is_file():
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        return SuiteReport(
            returncode=proc.returncode, note=f"no JUnit XML (pytest exit code {proc.returncode}): {tail}"
        )
    report = parse_junit(junit.read_text())
    report.returncode = proc.returncode
    return report


def _text(b: bytes | str | None) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


@dataclass
class JobResult:
    job: Job
    command: str  # the same job as a `python -m harness` command line
    outcome: str = "not run"  # completed | failed | interrupted | not run
    error: str | None = None
    run_id: str | None = None
    rows: list[Row] = field(default_factory=list)  # RunResult.points


@dataclass
class PreparedJob:
    record: JobResult
    spec: RunSpec
    config: dict[str, Any]  # the resolved config, kept in the run's run.json


def prepare_job(job: Job, results: Path) -> PreparedJob:
    """Compose and validate the job's config (before any GPU work); ConfigError names a bad value."""
    overrides = job.overrides(results)
    cfg = compose_config(overrides)
    command = "python -m harness " + " ".join(shlex.quote(o) for o in overrides)
    return PreparedJob(JobResult(job, command), run_spec_from_dict(cfg), cfg)


def run_job(prepared: PreparedJob, on_point: Callable[[Any, Row | None], None]) -> JobResult:
    """One ``harness.run.runner.run``; an exception ends this job only (recorded), never the acceptance run."""
    from harness.run import runner

    record = prepared.record
    try:
        if prepared.spec.repeats > 1:
            results = _run_in_processes(prepared, on_point)
        else:
            results = [runner.run(prepared.spec, config=prepared.config, on_point=on_point)]
    except Exception as e:  # noqa: BLE001 - a job that fails is a finding of the acceptance run
        log.error("%s failed: %s: %s", record.job.label, type(e).__name__, e)
        log.debug("traceback", exc_info=True)
        record.outcome, record.error = "failed", f"{type(e).__name__}: {e}"[:2000]
    else:
        outcomes = {r.outcome for r in results}
        record.outcome = outcomes.pop() if len(outcomes) == 1 else "mixed: " + ", ".join(sorted(outcomes))
        record.run_id, record.rows = results[0].run_id, [p for r in results for p in r.points]
        log.debug("%s: %s, %d point(s)", record.job.label, record.outcome, len(record.rows))
    finally:
        runner.release_memory(torch.device("cuda"))
    return record


def _run_in_processes(prepared: PreparedJob, on_point: Callable[[Any, Row | None], None]) -> list[Any]:
    """repeats=K: each repeat in a process of its own (harness.launch.isolated), one after the other."""
    from harness.launch.isolated import run_isolated
    from harness.launch.submit import make_tasks

    return [
        run_isolated(t.config, t.run_id, t.label, lambda: on_point(None, None)) for t in make_tasks(prepared.config)
    ]


def read_layers(results: Path, run_ids: set[str]) -> list[Row]:
    """The layers rows of these runs, read back from the store (empty where nothing was written)."""
    from harness.results import read

    try:
        frame = read(results, "layers")
    except (OSError, ValueError) as e:  # no results folder: every job failed before writing
        log.warning("cannot read the layers of %s: %s", results, e)
        return []
    return [r for r in as_rows(frame) if r.get("run_id") in run_ids]


# ---- rows --------------------------------------------------------------------------------------------------


def as_rows(data: Any) -> list[Row]:
    """Rows as dicts, from a list of dicts or a pandas DataFrame; NaN and pandas' NA become None."""
    records = data.to_dict("records") if hasattr(data, "to_dict") and hasattr(data, "columns") else list(data)
    return [{k: _clean(v) for k, v in r.items()} for r in records]


def _clean(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (list, tuple, dict, str, bytes)) and getattr(v, "ndim", 0) == 0:
        v = v.item()  # numpy scalars
    if v is None or (isinstance(v, float) and math.isnan(v)) or type(v).__name__ in ("NAType", "NaTType"):
        return None
    return v


def _num(row: Mapping[str, Any], key: str) -> float | None:
    v = _clean(row.get(key))
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def config_label(row: Mapping[str, Any]) -> str:
    return Config(str(row.get("dtype")), str(row.get("math_type")), str(row.get("fallback_policy"))).label


def point_label(row: Mapping[str, Any]) -> str:
    return (
        f"{row.get('model')} {row.get('algo')} {row.get('input_size')} px b{row.get('batch_size')} "
        f"[{config_label(row)}]"
    )


def _ok(rows: Iterable[Row]) -> list[Row]:
    return [r for r in rows if r.get("status") == "ok"]


def _g(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}g}"


def _ratio(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def _order(values: Iterable[Any], preferred: Sequence[Any] = ()) -> list[Any]:
    seen = list(dict.fromkeys(v for v in values))
    return [v for v in preferred if v in seen] + sorted((v for v in seen if v not in preferred), key=str)


# ---- checks (pure) -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    goal: str
    figure: str
    verdict: str  # PASS | FAIL | INFO
    details: tuple[Row, ...] = ()  # a detail table: one dict per row, keys are the columns


def _verdict(ok: bool) -> str:
    return PASS if ok else FAIL


def check_gpu_tests(report: SuiteReport) -> Check:
    """Pass: some tests ran, none failed, none skipped, and pytest itself ended normally."""
    figure = f"{report.passed} passed, {report.failed} failed, {report.skipped} skipped"
    ran = report.passed + report.failed + report.skipped > 0
    if report.note:
        figure += f"; {report.note}"
    elif not ran:
        figure += "; no test ran"
    elif report.returncode not in (None, 0, 1):
        figure += f"; pytest exit code {report.returncode}"
    ok = ran and report.failed == report.skipped == 0 and report.note is None and report.returncode in (None, 0)
    details = tuple({"test": n, "outcome": o, "message": m} for n, o, m in report.cases)
    return Check("GPU test suite", "all GPU tests pass, none skipped", figure, _verdict(ok), details)


def check_jobs(jobs: Sequence[JobResult]) -> Check:
    done = [j for j in jobs if j.outcome == "completed"]
    points = sum(len(j.rows) for j in jobs)
    figure = f"{len(done)} of {len(jobs)} jobs completed, {points} points"
    details = tuple(
        {"job": j.job.label, "outcome": j.outcome, "error": j.error or ""} for j in jobs if j.outcome != "completed"
    )
    not_run = sum(j.outcome == "not run" for j in jobs)
    if not_run:
        figure += f"; {not_run} not run (time budget)"
    return Check(
        "runs completed",
        "every job of the sweep and the extra runs returns",
        figure,
        _verdict(bool(jobs) and len(done) == len(jobs)),
        details,
    )


def check_errors(rows: Sequence[Row]) -> Check:
    bad = [r for r in rows if r.get("status") == "error"]
    details = tuple({"point": point_label(r), "error": r.get("error") or ""} for r in bad)
    return Check(
        "errors",
        "no point with status error",
        f"{len(bad)} of {len(rows)} points are errors",
        _verdict(not bad),
        details,
    )


def check_correctness(rows: Sequence[Row]) -> Check:
    """Every algorithm's output against the torch baseline's (verified at every point of the sweep).

    Details: a row per model x algorithm, a column per configuration: the worst max_rel_err of its ok points,
    and how many points were not verified (beyond tolerance, or not compared)."""
    compared = [r for r in rows if r.get("algo") != "torch" and r.get("status") in ("ok", "error")]
    failing = [
        r
        for r in compared
        if _clean(r.get("verified")) is False or (r.get("status") == "ok" and _clean(r.get("verified")) is not True)
    ]
    configs = _order((config_label(r) for r in compared), [c.label for c in CONFIGS])
    cells: dict[tuple[str, str], dict[str, list[Row]]] = {}
    for r in compared:
        cells.setdefault((str(r.get("model")), str(r.get("algo"))), {}).setdefault(config_label(r), []).append(r)
    details = tuple(
        {"model": m, "algo": a} | {c: _error_cell(cells[(m, a)].get(c, []), failing) for c in configs}
        for m in _order((k[0] for k in cells), MODELS)
        for a in _order((k[1] for k in cells), ALGOS)
        if (m, a) in cells
    )
    worst = {
        c: max(
            (e for r in _ok(compared) if config_label(r) == c and (e := _num(r, "max_rel_err")) is not None),
            default=None,
        )
        for c in configs
    }
    figure = "; ".join(f"{c}: {_g(e, 3)}" for c, e in worst.items() if e is not None) or "no verified point"
    figure = (f"{len(failing)} point(s) not verified; " if failing else "") + "worst max_rel_err " + figure
    return Check(
        "correctness vs torch",
        "every ok point verified against the torch baseline (within tolerance)",
        figure,
        _verdict(bool(_ok(compared)) and not failing),
        details,
    )


def _error_cell(rs: Sequence[Row], failing: Sequence[Row]) -> str:
    if not rs:
        return "-"
    errs = [e for e in (_num(r, "max_rel_err") for r in _ok(rs)) if e is not None]
    bad = sum(any(r is f for f in failing) for r in rs)
    text = _g(max(errs), 2) if errs else "-"
    return text + (f" (NOT VERIFIED: {bad} of {len(rs)})" if bad else "")


def _cell(rs: Sequence[Row]) -> str:
    statuses = Counter(str(r.get("status")) for r in rs)
    text = (
        next(iter(statuses))
        if len(statuses) == 1
        else ", ".join(f"{s} {n}/{len(rs)}" for s, n in sorted(statuses.items()))
    )
    fallback = max((int(v) for v in (_num(r, "algo_fallback_layers") for r in rs) if v is not None), default=0)
    return text + (f" (fallback layers {fallback})" if fallback else "")


def check_support(rows: Sequence[Row]) -> Check:
    """Which algorithm runs each model in each configuration: the point statuses, and layers that fell back."""
    configs = _order((config_label(r) for r in rows), [c.label for c in CONFIGS])
    cells: dict[tuple[str, str], dict[str, list[Row]]] = {}
    for r in rows:
        cells.setdefault((str(r.get("model")), str(r.get("algo"))), {}).setdefault(config_label(r), []).append(r)
    models = _order((m for m, _ in cells), MODELS)
    algos = _order((a for _, a in cells), ALGOS)
    details = tuple(
        {"model": m, "algo": a} | {c: _cell(cells[(m, a)].get(c, [])) if c in cells[(m, a)] else "-" for c in configs}
        for m in models
        for a in algos
        if (m, a) in cells
    )
    counts = Counter(str(r.get("status")) for r in rows)
    figure = ", ".join(f"{s} {counts[s]}" for s in ("ok", "unsupported", "oom", "error") if counts[s]) or "no point"
    return Check(
        "support matrix",
        "which algorithms run which models (information)",
        f"{figure} of {len(rows)} points",
        INFO,
        details,
    )


def check_cv(rows: Sequence[Row], goal: float = CV_GOAL, name: str = "cv per point", judged: bool = True) -> Check:
    """The cv of each ok point against the goal; ``judged=False`` reports it as information only."""
    measured = [(r, _num(r, "cv")) for r in _ok(rows)]
    values = [(r, cv) for r, cv in measured if cv is not None]
    over = sorted(((r, cv) for r, cv in values if cv > goal), key=lambda rc: -rc[1])
    missing = len(measured) - len(values)
    worst = max(values, key=lambda rc: rc[1], default=None)
    figure = (
        (
            f"{len(values) - len(over)} of {len(values)} ok points ({_pct((len(values) - len(over)) / len(values))}) "
            f"meet it; worst {_pct(worst[1])} ({point_label(worst[0])})"
        )
        if values
        else "no ok point"
    )
    if missing:
        figure += f"; {missing} ok point(s) without a cv"
    details = tuple(
        {"point": point_label(r), "cv": _pct(cv), "n": r.get("n"), "p50 ms": _g(_num(r, "p50_ms"))} for r, cv in over
    )
    if not judged:
        return Check(name, f"cv <= {_pct(goal)} (information)", figure, INFO, details)
    return Check(name, f"cv <= {_pct(goal)}", figure, _verdict(bool(values) and not over and not missing), details)


_POINT_KEY = ("model", "algo", "input_size", "batch_size", "dtype", "math_type", "fallback_policy")


def _key(row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row.get(k) for k in _POINT_KEY)


def check_repeat(first_rows: Sequence[Row], second_rows: Sequence[Row], goal: float = REPEAT_GOAL) -> Check:
    """The same point measured by the sweep and again, later, in separate processes (repeats): each process's
    p50 over the sweep's, and the spread between the processes (with the between-process share of the
    variance where there are two or more)."""
    name, goal_text = "same point again, in separate processes", f"every p50 within {_pct(goal)} of the sweep's"
    firsts = {_key(r): r for r in _ok(first_rows)}
    again = [r for r in _ok(second_rows) if _key(r) in firsts]
    if not again:
        return Check(
            name,
            goal_text,
            "no pair of ok measurements of the same point "
            f"({len(second_rows)} repeat row(s), statuses {[r.get('status') for r in second_rows]})",
            FAIL,
        )
    details, ratios, ok = [], [], True
    for b in again:
        a = firsts[_key(b)]
        p1, p2 = _num(a, "p50_ms"), _num(b, "p50_ms")
        ratio = p2 / p1 if p1 and p2 is not None else None
        ratios.append(ratio if ratio is not None else 0.0)
        ok &= ratio is not None and abs(ratio - 1) <= goal
        details.append(
            {
                "point": point_label(b),
                "process": b.get("repeat"),
                "sweep p50 ms": _g(p1),
                "p50 ms": _g(p2),
                "ratio": _ratio(ratio),
                "sweep cv": _pct(_num(a, "cv")),
                "cv": _pct(_num(b, "cv")),
            }
        )
    p50s = [v for v in (_num(r, "p50_ms") for r in again) if v]
    figure = (
        f"{details[0]['point']}: sweep p50 {details[0]['sweep p50 ms']} ms; in {len(p50s)} process(es) "
        f"{' / '.join(_g(v) for v in p50s)} ms: worst ratio {_ratio(max(ratios))}"
    )
    if len(p50s) >= 2:
        spread = max(p50s) / min(p50s) - 1
        frame = pd.DataFrame(again)
        b = between_process(np.log(frame["p50_ms"].astype(float)), log_se(frame), np.zeros(len(frame)))
        figure += (
            f"; spread between processes {_pct(spread)}, between-process sd {_pct(float(np.sqrt(b.tau2)))} "
            f"({_pct(b.share)} of the variance)"
        )
    return Check(name, goal_text, figure, _verdict(ok), tuple(details))


def check_guess_vs_torch(
    rows: Sequence[Row], goal: float = GUESS_TORCH_GOAL, config: Config = BASE, graph: bool = True
) -> Check:
    """Whole-model p50 of algo=guess over algo=torch, per model and input size, in one configuration, timed
    as CUDA graph replays (the GPU's time, the harness's default on a GPU: judged against the goal) or eagerly
    (what a Python caller waits for, the host's issuing included: information; cuDNN's legacy calls through
    ctypes cost the host far more than PyTorch's own path, e.g. 3.5x on resnet50 at batch 1 on an H100)."""
    name = f"guess / torch ({'CUDA graph' if graph else 'eager'})"
    goal_text = f"p50(guess) / p50(torch) <= {goal:g} per model and size ({config.label})"
    if not graph:
        goal_text += " (information)"
    same = [r for r in rows if config_label(r) == config.label and bool(_clean(r.get("cuda_graph"))) == graph]
    points = {
        (r.get("algo"), r.get("model"), r.get("input_size"), r.get("batch_size")): r
        for r in same
        if r.get("algo") in ("guess", "torch")
    }
    models = _order((k[1] for k in points), MODELS)
    keys = sorted({k[1:] for k in points}, key=lambda k: (models.index(k[0]), k[1] or 0, k[2] or 0))
    details, ratios, missing = [], [], 0
    for model, size, batch in keys:
        g, t = points.get(("guess", model, size, batch)), points.get(("torch", model, size, batch))
        pg = _num(g, "p50_ms") if g and g.get("status") == "ok" else None
        pt = _num(t, "p50_ms") if t and t.get("status") == "ok" else None
        ratio = pg / pt if pg is not None and pt else None
        missing += ratio is None
        if ratio is not None:
            ratios.append(ratio)
        details.append(
            {
                "model": model,
                "input size": size,
                "batch": batch,
                "torch p50 ms": _g(pt),
                "guess p50 ms": _g(pg),
                "ratio": _ratio(ratio),
                "verdict": "-" if ratio is None else _verdict(ratio <= goal),
            }
        )
    figure = (
        f"worst {max(ratios):.3f}, best {min(ratios):.3f} over {len(ratios)} model/size pair(s)"
        if ratios
        else "no pair"
    )
    if missing:
        figure += f"; {missing} pair(s) without an ok guess and torch point"
    ok = bool(ratios) and not missing and max(ratios) <= goal
    return Check(name, goal_text, figure, _verdict(ok) if graph else INFO, tuple(details))


ENERGY_COLUMNS = (
    "energy_per_inference_j",
    "energy_integral_per_inference_j",
    "energy_method",
    "energy_window_s",
    "energy_inferences",
    "idle_power_w",
    "power_mean_w",
    "sm_clock_mhz",
    "temperature_c",
    "throttle_reasons",
)


def check_energy(rows: Sequence[Row], goal: float = ENERGY_GOAL) -> Check:
    """The NVML energy counter against the trapezoid integral of sampled power over the same window."""
    name, goal_text = "energy: counter vs integral", f"within {_pct(goal)}"
    ok_rows = _ok(rows)
    if not ok_rows:
        return Check(name, goal_text, f"no ok energy point (statuses {[r.get('status') for r in rows]})", FAIL)
    details, verdicts, figures = [], [], []
    for r in ok_rows:
        counter, integral = _num(r, "energy_per_inference_j"), _num(r, "energy_integral_per_inference_j")
        method = r.get("energy_method")
        apart = abs(integral - counter) / counter if counter and integral is not None else None
        verdicts.append(method == "nvml_counter" and apart is not None and apart <= goal)
        details.append({"point": point_label(r), "apart": _pct(apart)} | {c: _shown(r.get(c)) for c in ENERGY_COLUMNS})
        if method != "nvml_counter":
            figures.append(f"energy_method {method}: no NVML energy counter to compare")
        else:
            figures.append(
                f"counter {_g(counter)} J, integral {_g(integral)} J per inference: {_pct(apart)} apart "
                f"(window {_g(_num(r, 'energy_window_s'), 3)} s, throttle: {r.get('throttle_reasons')})"
            )
    return Check(name, goal_text, "; ".join(figures), _verdict(all(verdicts)), tuple(details))


def _shown(v: Any) -> Any:
    v = _clean(v)
    return _g(v, 5) if isinstance(v, float) else v


def check_oom(rows: Sequence[Row], completed: bool, batches: tuple[int, int] = OOM_BATCHES) -> Check:
    small, large = batches
    by_batch = {r.get("batch_size"): r for r in rows}
    s, b = by_batch.get(small), by_batch.get(large)
    status_s, status_b = (r.get("status") if r else "missing" for r in (s, b))
    figure = (
        f"batch {small}: {status_s}; batch {large}: {status_b}; job {'completed' if completed else 'did not complete'}"
    )
    details = tuple(
        {"batch": r.get("batch_size"), "status": r.get("status"), "error": _first_line(r.get("error"))} for r in rows
    )
    ok = status_s == "ok" and status_b == "oom" and completed
    return Check(
        "out of memory",
        f"batch {large} gives an oom row, batch {small} ok, the job goes on",
        figure,
        _verdict(ok),
        details,
    )


def check_launch_bound(rows: Sequence[Row]) -> Check:
    ok = _ok(rows)
    flagged = [r for r in ok if _clean(r.get("launch_bound")) is True]
    details = tuple(
        {
            "point": point_label(r),
            "p50 ms": _g(_num(r, "p50_ms")),
            "host_p50 ms": _g(_num(r, "host_p50_ms")),
            "host_issue ms": _g(_num(r, "host_issue_ms")),
            "cuda_graph": r.get("cuda_graph"),
        }
        for r in flagged
    )
    return Check(
        "launch-bound points",
        "points where the host sets the pace (information)",
        f"{len(flagged)} of {len(ok)} ok points launch-bound",
        INFO,
        details,
    )


def _geometry(r: Mapping[str, Any]) -> str:
    if r.get("in_channels") is None:
        return "-"
    return (
        f"{r.get('in_channels')}->{r.get('out_channels')} k{r.get('kernel_h')}x{r.get('kernel_w')} "
        f"s{r.get('stride_h')} g{r.get('groups')} in {r.get('in_h')}x{r.get('in_w')}"
    )


def check_guess_choices(layer_rows: Sequence[Row], configs_by_run: Mapping[str, str]) -> Check:
    """What cuDNN's heuristic (algo=guess) chose for each layer: a row per model x size x layer, a column per
    configuration."""
    guess = [r for r in layer_rows if r.get("algo_requested") == "guess"]
    configs = _order((_layer_config(r, configs_by_run) for r in guess), [c.label for c in CONFIGS])
    table: dict[tuple[str, Any, Any], Row] = {}
    for r in guess:
        key = (str(r.get("model")), r.get("input_size"), r.get("layer_index"))
        cell = table.setdefault(
            key,
            {"model": key[0], "input size": key[1], "layer": r.get("layer_name"), "geometry": _geometry(r)}
            | {c: "-" for c in configs},
        )
        cell[_layer_config(r, configs_by_run)] = str(r.get("algo_used"))
    models = {m: i for i, m in enumerate(_order((k[0] for k in table), MODELS))}
    order = sorted(
        table, key=lambda k: (models[k[0]], k[1] if k[1] is not None else -1, k[2] if k[2] is not None else -1)
    )
    used = Counter(str(r.get("algo_used")) for r in guess)
    figure = ", ".join(f"{a} {n}" for a, n in used.most_common()) or "no guess layer rows"
    return Check(
        "guess: cuDNN's choices",
        "the algorithm guess chose per layer (information)",
        f"layers: {figure}",
        INFO,
        tuple(table[k] for k in order),
    )


def _layer_config(r: Mapping[str, Any], configs_by_run: Mapping[str, str]) -> str:
    return configs_by_run.get(str(r.get("run_id")), f"{r.get('dtype')} {r.get('math_type')}")


def check_unsupported_layers(layer_rows: Sequence[Row], configs_by_run: Mapping[str, str]) -> Check:
    """Why layers could not run their algorithm (the layers rows' detail), grouped."""
    groups: dict[tuple[str, str, str], list[Row]] = {}
    for r in layer_rows:
        if r.get("status") not in ("unsupported", "fallback"):
            continue
        key = (str(r.get("algo_requested")), _layer_config(r, configs_by_run), _first_line(r.get("detail"), 160))
        groups.setdefault(key, []).append(r)
    details = tuple(
        {
            "algo": a,
            "config": c,
            "status": ", ".join(sorted({str(r.get("status")) for r in rs})),
            "layers": len(rs),
            "models": ", ".join(_order({str(r.get("model")) for r in rs}, MODELS)),
            "detail": d,
        }
        for (a, c, d), rs in sorted(groups.items())
    )
    n = sum(len(rs) for rs in groups.values())
    return Check(
        "layers not run as asked",
        "unsupported and fallback layers, and why (information)",
        f"{n} layer rows in {len(groups)} group(s)",
        INFO,
        details,
    )


@dataclass
class Evidence:
    """Everything the acceptance run observed: the evaluation's only input."""

    tests: SuiteReport
    jobs: list[JobResult]
    layer_rows: list[Row] = field(default_factory=list)  # the sweep's layers rows

    def rows(self, phase: str | None = None) -> list[Row]:
        return [r for j in self.jobs if phase is None or j.job.phase == phase for r in as_rows(j.rows)]

    def completed(self, phase: str) -> bool:
        jobs = [j for j in self.jobs if j.job.phase == phase]
        return bool(jobs) and all(j.outcome == "completed" for j in jobs)

    def configs_by_run(self) -> dict[str, str]:
        return {j.run_id: j.job.config.label for j in self.jobs if j.run_id}


def evaluate(e: Evidence) -> list[Check]:
    sweep, layers, by_run = e.rows("sweep"), as_rows(e.layer_rows), e.configs_by_run()
    return [
        check_gpu_tests(e.tests),
        check_jobs(e.jobs),
        check_errors(e.rows()),
        check_correctness(sweep),
        check_support(sweep),
        check_guess_choices(layers, by_run),
        check_unsupported_layers(layers, by_run),
        check_guess_vs_torch(sweep),
        check_guess_vs_torch(e.rows("eager"), graph=False),
        check_cv(sweep),
        check_cv(e.rows("eager"), name="cv per point (eager)", judged=False),
        check_repeat(sweep, e.rows("repeat")),
        check_energy(e.rows("energy")),
        check_oom(e.rows("oom"), e.completed("oom")),
        check_launch_bound([*sweep, *e.rows("eager")]),
    ]


def passed(checks: Sequence[Check]) -> bool:
    return all(c.verdict != FAIL for c in checks)


# ---- the verdict as Markdown (pure) ------------------------------------------------------------------------

ENV_COLUMNS = (
    "device_name",
    "driver_version",
    "torch_version",
    "cuda_version",
    "cudnn_version",
    "hostname",
    "git_commit",
)


def environment_from_rows(rows: Sequence[Row]) -> dict[str, str | None]:
    """The provenance columns the rows carry (several distinct values are joined with ' / ')."""
    env: dict[str, str | None] = {}
    for col in ENV_COLUMNS:
        values = list(dict.fromkeys(str(v) for v in (_clean(r.get(col)) for r in rows) if v is not None))
        env[col] = " / ".join(values) if values else None
    return env


def device_slug(name: str) -> str:
    """'NVIDIA H100 80GB HBM3' -> 'nvidia-h100-80gb-hbm3'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown-device"


def _cell_text(v: Any) -> str:
    if v is None:
        return "-"
    text = f"{v:.4g}" if isinstance(v, float) else str(v)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], limit: int = 400) -> str:
    if not rows:
        return "_none_\n"
    columns = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell_text(r.get(c)) for c in columns) + " |" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"\n... and {len(rows) - limit} more rows")
    return "\n".join(lines) + "\n"


def render_markdown(checks: Sequence[Check], env: Mapping[str, Any]) -> str:
    """The validation document: environment, commands, the table of checks, then each check's details."""
    verdict = "PASS" if passed(checks) else "FAIL: " + ", ".join(c.name for c in checks if c.verdict == FAIL)
    out = [
        f"# GPU acceptance: {env.get('device_name') or 'unknown device'}, {env.get('date')}",
        "",
        f"Verdict: **{verdict}**" + (" (quick run: one model, one size)" if env.get("quick") else ""),
        "",
        "| | |",
        "|---|---|",
    ]
    facts = [
        ("date (UTC)", env.get("datetime") or env.get("date")),
        ("device", env.get("device_name")),
        ("driver", env.get("driver_version")),
        ("torch", env.get("torch_version")),
        ("CUDA", env.get("cuda_version")),
        ("cuDNN", env.get("cudnn_version")),
        ("host", env.get("hostname")),
        ("harness commit", env.get("git_commit")),
        ("results", env.get("results")),
        ("wall time", f"{env['elapsed_s']:.0f} s" if isinstance(env.get("elapsed_s"), (int, float)) else None),
    ]
    out += [f"| {k} | {_cell_text(v)} |" for k, v in facts]
    commands = list(env.get("commands") or [])
    out += ["", "## Commands", "", "```sh", *commands[:2], "```"]
    if len(commands) > 2:
        out += [
            "",
            f"<details><summary>The {len(commands) - 2} harness runs, as `python -m harness` commands "
            "(run in-process through harness.run.runner.run)</summary>",
            "",
            "```sh",
            *commands[2:],
            "```",
            "",
            "</details>",
        ]
    out += [
        "",
        "## Checks",
        "",
        markdown_table([{"check": c.name, "goal": c.goal, "figure": c.figure, "verdict": c.verdict} for c in checks]),
    ]
    out += ["## Details", ""]
    for c in checks:
        out += [f"### {c.name}: {c.verdict}", "", f"{c.goal}. {c.figure}.", "", markdown_table(list(c.details))]
    return "\n".join(out)


def summary_table(checks: Sequence[Check]) -> Table:
    table = Table(title="GPU acceptance")
    for col in ("check", "goal", "figure", "verdict"):
        table.add_column(col, overflow="fold")
    colour = {PASS: "green", FAIL: "red", INFO: "cyan"}
    for c in checks:
        table.add_row(escape(c.name), escape(c.goal), escape(c.figure), f"[{colour[c.verdict]}]{c.verdict}[/]")
    return table


def verdict_path(out: Path, device_name: str, date: str) -> Path:
    """<out>/<device-slug>-<date>.md; a later run the same day gets -2, -3... (a verdict is never overwritten)."""
    base = f"{device_slug(device_name)}-{date}"
    path, n = out / f"{base}.md", 2
    while path.exists():
        path, n = out / f"{base}-{n}.md", n + 1
    return path


# ---- the command ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="python -m harness.acceptance",
        description="On a CUDA GPU: the GPU tests, a short real sweep and extra runs, checked against the goals "
        "of GPU-CHECKS.md; writes docs/validation/<device>-<date>.md. Exit 0: every check passes; "
        "1: some check fails; 2: no CUDA GPU here (nothing run or written).",
    )
    p.add_argument(
        "--quick", action="store_true", help=f"one model ({QUICK_MODEL}) and one size ({QUICK_SIZE}): a smoke run"
    )
    # defaults as text: argparse checks them like given values, so an unwritable default is refused before GPU work
    p.add_argument(
        "--out",
        type=validate.output_folder,
        default=str(REPO / "docs" / "validation"),
        help="folder of the Markdown verdict",
    )
    p.add_argument(
        "--jobs-dir",
        type=validate.output_folder,
        default="jobs",
        help="results go to JOBS_DIR/acceptance-<UTC timestamp>/results (default: jobs)",
    )
    p.add_argument(
        "--budget-s",
        type=validate.positive_float,
        default=DEFAULT_BUDGET_S,
        help="sweep jobs not started by then (minus a reserve for the extra runs) are not run",
    )
    p.add_argument(
        "--tests-timeout-s", type=validate.positive_float, default=TESTS_TIMEOUT_S, help="limit of the GPU test suite"
    )
    return p


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def cuda_available() -> bool:
    return torch.cuda.is_available()


def _progress(console: Console) -> Progress:
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    )


@contextmanager
def _logging_to(path: Path, console: Console) -> Iterator[None]:
    """INFO and above on the console (through rich, above the progress bars), DEBUG of the harness in a file."""
    root, ours = logging.getLogger(), logging.getLogger("harness")
    shown = RichHandler(console=console, show_path=False, level=logging.INFO)
    kept = logging.FileHandler(path)
    kept.setLevel(logging.DEBUG)
    kept.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    saved = root.level, ours.level
    root.addHandler(shown)
    root.addHandler(kept)
    root.setLevel(logging.INFO)
    ours.setLevel(logging.DEBUG)
    try:
        yield
    finally:
        root.removeHandler(shown)
        root.removeHandler(kept)
        kept.close()
        root.setLevel(saved[0])
        ours.setLevel(saved[1])


def _job_folder(jobs_dir: Path, stamp: str) -> Path:
    folder, n = jobs_dir / f"acceptance-{stamp}", 2
    while folder.exists():
        folder, n = jobs_dir / f"acceptance-{stamp}-{n}", n + 1
    folder.mkdir(parents=True)
    return folder.resolve()


def _run_jobs(jobs: Sequence[PreparedJob], bar: Progress, title: str, deadline: float | None) -> list[JobResult]:
    """Run the jobs one after the other with a progress bar of points; after ``deadline``, start no more."""
    task = bar.add_task(title, total=sum(p.record.job.points() for p in jobs))
    done = []
    for prepared in jobs:
        job = prepared.record.job
        if deadline is not None and time.monotonic() > deadline:
            log.warning("time budget spent: %s not run", job.label)
            done.append(prepared.record)
            continue
        bar.update(task, description=f"{title}: {job.model} {job.algo} [{job.config.label}]")
        done.append(run_job(prepared, lambda key, point: bar.advance(task)))
    bar.update(task, description=title)
    return done


@command
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out, err = Console(), Console(stderr=True)
    if not cuda_available():
        raise MissingEnvironmentError(
            f"python -m harness.acceptance needs a CUDA GPU; this machine has "
            f"{what_this_machine_has()}. Nothing was run or written."
        )
    started, t0 = datetime.now(timezone.utc), time.monotonic()
    folder = _job_folder(args.jobs_dir, started.strftime("%Y%m%dT%H%M%SZ"))
    results = folder / "results"
    with _logging_to(folder / "acceptance.log", err):
        plan = make_plan(args.quick)
        # every config checked before any GPU work: a HarnessError here is refused at the border (exit 2)
        sweep = [prepare_job(j, results) for j in plan.sweep_jobs()]
        more = [prepare_job(j, results) for j in extra_jobs(plan)]
        out.print(
            f"{torch.cuda.get_device_name()}: GPU tests, then {len(sweep)} sweep jobs ({plan.points()} points: "
            f"{', '.join(plan.models)} x {len(plan.sizes)} sizes x {len(plan.algos)} algorithms x "
            f"{len(plan.configs)} configurations), then {len(more)} extra runs. Estimate on an H100: about "
            f"{estimate_s(plan) / 60:.0f} min (budget {args.budget_s / 60:.1f} min). Results: {results}",
            highlight=False,
            soft_wrap=True,
        )
        junit = folder / "gpu-tests.xml"
        given = list(argv) if argv is not None else sys.argv[1:]
        commands = [
            " ".join(["python -m harness.acceptance", *map(shlex.quote, given)]),
            " ".join(["python", *map(shlex.quote, gpu_test_command(junit)[1:])]),
        ]
        with _progress(err) as bar:
            step = bar.add_task("1/3 GPU tests (pytest -m gpu)", total=None)
            tests = run_gpu_tests(junit, folder / "gpu-tests.log", args.tests_timeout_s)
            bar.update(
                step,
                total=1,
                completed=1,
                description=f"1/3 GPU tests: {tests.passed} passed, " f"{tests.failed} failed, {tests.skipped} skipped",
            )
            deadline = t0 + args.budget_s - extras_s(plan) - SECONDS_REPORT
            jobs = _run_jobs(sweep, bar, "2/3 sweep", deadline)
            jobs += _run_jobs(more, bar, "3/3 extra runs (eager, same point twice, energy, out of memory)", None)
        commands += [j.command for j in jobs]
        sweep_runs = {j.run_id for j in jobs if j.job.phase == "sweep" and j.run_id}
        checks = evaluate(Evidence(tests, jobs, read_layers(results, sweep_runs)))
        env = environment_from_rows([r for j in jobs for r in j.rows])
        env["device_name"] = env.get("device_name") or torch.cuda.get_device_name()
        env |= {
            "date": started.strftime("%Y-%m-%d"),
            "datetime": started.strftime("%Y-%m-%d %H:%M:%S UTC"),
            "commands": commands,
            "results": str(results),
            "elapsed_s": time.monotonic() - t0,
            "quick": args.quick,
        }
        args.out.mkdir(parents=True, exist_ok=True)
        path = verdict_path(args.out, env["device_name"], env["date"])
        path.write_text(render_markdown(checks, env))
        log.info("log of this run: %s", folder / "acceptance.log")
    out.print(summary_table(checks))
    out.print(f"verdict: {'PASS' if passed(checks) else 'FAIL'}; written to {path}", highlight=False, soft_wrap=True)
    return 0 if passed(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
