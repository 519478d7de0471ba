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
``AcceptanceCheck`` records, and the Markdown is a pure function of the checks and an environment dict.

The package, one module per concern: ``plan`` (what is measured, the goals), ``budget``, ``compose`` (a job's
config), ``suite`` (the GPU tests), ``sweep`` (the runs), ``rows``, ``checks``, ``extras`` and ``layers`` (the
checks), ``evidence`` (the evaluation), ``verdict`` (the Markdown), ``cli`` (the command). This ``__init__``
re-exports the names ``harness.acceptance`` had as one module (jobs in flight and callers import them from here);
``Check``, ``Plan`` and ``Evidence`` are the old names of ``AcceptanceCheck``, ``SweepPlan`` and
``AcceptanceEvidence``.
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
    Config,
    Job,
    SweepPlan,
    extra_jobs,
    make_plan,
)
from harness.acceptance.rows import FAIL, INFO, PASS, Row, as_rows, config_label, point_label
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
