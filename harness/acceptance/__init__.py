"""`python -m harness.acceptance --suite core|regimes|energy|training`: the checks of GPU-CHECKS.md, a suite per lease
of a GPU, each adding its section to one Markdown verdict per device and date.

A GPU is lent for 15 minutes of device time at a time, machine start included; each suite fits one lease
(``--budget-s``, default 8 minutes), and scripts/device-session.sh runs them in order of value:

- ``core``: the GPU test suite (``pytest -m gpu``, in a subprocess; its JUnit XML read back); every algorithm
  cuDNN runs, ``find`` and ``torch`` on vgg16 and resnet50 at 224 (FP32 strict with fallback none and torch,
  TF32), timed as CUDA graphs until each median's 95% interval is within 1%; guess and torch eagerly; the same
  point in 3 separate processes; a batch that runs out of memory;
- ``regimes``: resnet50 and vgg16 at 224, batch 1, 32, 256 x FP32 strict, TF32, FP16, BF16 x NCHW, NHWC for
  guess, torch, implicit_precomp_gemm, winograd_nonfused and fft_tiling (configuration by configuration, most
  valuable first, so a suite cut short by its budget covers whole configurations);
- ``energy``: energy windows of CUDA-graph replays;
- ``training``: the backward families' GPU tests; per backward direction every algorithm with an enum there,
  guess, find and torch on resnet50 and vgg16 at 224 (support, gradients, capture); the training step per
  algorithm, a training plan made from it (``python -m analysis.plans make --direction train_step``) and run,
  its projected step against its measured one. ``--cpu-smoke`` runs it on the CPU (resnet18, the reference
  backend): what CI runs.

Results go into ``jobs/acceptance-<UTC timestamp>/results``; the verdict is
``docs/validation/<device-slug>-<YYYY-MM-DD>.md``, one section per suite (a rerun of a suite that day replaces
its section; the others are kept). Exit code 0 when every check of the suite passes, 1 otherwise, 2 without a
CUDA GPU (nothing run, nothing written).

The GPU work (the pytest subprocess, the runner calls) is thin; the checks are pure functions over point
rows (dicts as ``RunResult.points`` holds them, or a DataFrame read back from the store) returning
``AcceptanceCheck`` records, and the Markdown is a pure function of the checks and an environment dict.

The package, one module per concern: ``plan`` (the suites: what is measured, the goals), ``budget``,
``compose`` (a job's config), ``suite`` (the GPU tests), ``sweep`` (the runs), ``rows``, ``checks``,
``extras``, ``stability``, ``layers`` and ``training_checks`` (the checks), ``training`` (the training plan's
step), ``evidence`` (the evaluation), ``verdict`` (the
Markdown), ``cli`` (the command). This ``__init__`` re-exports the names ``harness.acceptance`` had as one
module (jobs in flight and callers import them from here); ``Check``, ``Plan`` and ``Evidence`` are the old
names of ``AcceptanceCheck``, ``SweepPlan`` and ``AcceptanceEvidence``.
"""

from __future__ import annotations

from harness.acceptance.budget import (
    DEFAULT_BUDGET_S,
    SECONDS_EXTRAS,
    SECONDS_GPU_TESTS,
    SECONDS_PER_JOB,
    SECONDS_PER_POINT,
    SECONDS_PER_PROCESS,
    SECONDS_REPORT,
    TESTS_TIMEOUT_S,
    estimate_s,
    extras_s,
)
from harness.acceptance.checks import (
    AcceptanceCheck,
    check_correctness,
    check_cv,
    check_errors,
    check_gpu_tests,
    check_jobs,
    check_support,
)
from harness.acceptance.cli import _run_jobs, build_parser, cuda_available, main, parse_args
from harness.acceptance.compose import compose_config, compose_plain, override_value, yaml_value
from harness.acceptance.evidence import AcceptanceEvidence, evaluate, passed
from harness.acceptance.extras import (
    ENERGY_COLUMNS,
    check_energy,
    check_guess_vs_torch,
    check_launch_bound,
    check_oom,
    check_repeat,
)
from harness.acceptance.layers import check_guess_choices, check_unsupported_layers
from harness.acceptance.plan import (
    ALGOS,
    BASE,
    COMMON,
    CONFIGS,
    CV_GOAL,
    ENERGY_GOAL,
    ENERGY_WINDOW_S,
    GUESS_TORCH_GOAL,
    MODELS,
    OOM_BATCHES,
    QUICK_MODEL,
    QUICK_SIZE,
    REPEAT_GOAL,
    REPEAT_PROCESSES,
    SIZES,
    SUITE_ORDER,
    SUITES,
    Config,
    Job,
    Suite,
    SweepPlan,
    energy_jobs,
    extra_jobs,
    make_plan,
    regimes_plan,
)
from harness.acceptance.rows import FAIL, INFO, PASS, Row, as_rows, config_label, point_label
from harness.acceptance.stability import check_capture, check_interval, check_ranking
from harness.acceptance.suite import (
    INSIDE_ENV,
    REPO,
    SELF_TEST,
    SuiteReport,
    gpu_test_command,
    parse_junit,
    run_gpu_tests,
)
from harness.acceptance.sweep import JobResult, PreparedJob, prepare_job, read_layers, run_job
from harness.acceptance.verdict import (
    ENV_COLUMNS,
    device_slug,
    environment_from_rows,
    markdown_table,
    render_markdown,
    summary_table,
    verdict_path,
)

# the old names (three classes named Check in the project, two Plan, two Evidence)
Check = AcceptanceCheck
Plan = SweepPlan
Evidence = AcceptanceEvidence

__all__ = [
    "AcceptanceCheck",
    "AcceptanceEvidence",
    "ALGOS",
    "as_rows",
    "BASE",
    "build_parser",
    "Check",
    "check_correctness",
    "check_cv",
    "check_energy",
    "check_errors",
    "check_gpu_tests",
    "check_guess_choices",
    "check_guess_vs_torch",
    "check_jobs",
    "check_launch_bound",
    "check_oom",
    "check_repeat",
    "check_support",
    "check_unsupported_layers",
    "COMMON",
    "compose_config",
    "compose_plain",
    "Config",
    "config_label",
    "CONFIGS",
    "cuda_available",
    "CV_GOAL",
    "DEFAULT_BUDGET_S",
    "device_slug",
    "ENERGY_COLUMNS",
    "ENERGY_GOAL",
    "ENERGY_WINDOW_S",
    "ENV_COLUMNS",
    "environment_from_rows",
    "estimate_s",
    "evaluate",
    "Evidence",
    "extra_jobs",
    "energy_jobs",
    "regimes_plan",
    "SUITES",
    "SUITE_ORDER",
    "Suite",
    "check_capture",
    "check_interval",
    "check_ranking",
    "extras_s",
    "FAIL",
    "gpu_test_command",
    "GUESS_TORCH_GOAL",
    "INFO",
    "INSIDE_ENV",
    "Job",
    "JobResult",
    "main",
    "make_plan",
    "markdown_table",
    "MODELS",
    "OOM_BATCHES",
    "override_value",
    "parse_args",
    "parse_junit",
    "PASS",
    "passed",
    "Plan",
    "point_label",
    "prepare_job",
    "PreparedJob",
    "QUICK_MODEL",
    "QUICK_SIZE",
    "read_layers",
    "render_markdown",
    "REPEAT_GOAL",
    "REPEAT_PROCESSES",
    "REPO",
    "Row",
    "run_gpu_tests",
    "run_job",
    "_run_jobs",
    "SECONDS_EXTRAS",
    "SECONDS_GPU_TESTS",
    "SECONDS_PER_JOB",
    "SECONDS_PER_POINT",
    "SECONDS_PER_PROCESS",
    "SECONDS_REPORT",
    "SELF_TEST",
    "SIZES",
    "SuiteReport",
    "summary_table",
    "SweepPlan",
    "TESTS_TIMEOUT_S",
    "verdict_path",
    "yaml_value",
]
