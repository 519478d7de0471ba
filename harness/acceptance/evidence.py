"""What the acceptance run observed, and its evaluation: every check in the verdict's order."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from harness.acceptance.checks import (
    AcceptanceCheck,
    check_correctness,
    check_cv,
    check_errors,
    check_gpu_tests,
    check_jobs,
    check_support,
)
from harness.acceptance.energy_checks import (
    check_counter_period,
    check_energy_procedure,
    check_linearity,
    check_telemetry,
)
from harness.acceptance.energy_probe import EnergyProbe
from harness.acceptance.extras import check_energy, check_guess_vs_torch, check_launch_bound, check_oom, check_repeat
from harness.acceptance.kernels import check_same_kernels
from harness.acceptance.layers import check_guess_choices, check_unsupported_layers
from harness.acceptance.rows import FAIL, Row, as_rows
from harness.acceptance.stability import check_capture, check_interval, check_ranking
from harness.acceptance.suite import SuiteReport
from harness.acceptance.sweep import JobResult
from harness.acceptance.training import TrainingPlanStep
from harness.acceptance.training_checks import (
    check_direction_support,
    check_plan_projection,
    check_training_capture,
    check_training_gradients,
    training_tests,
)


@dataclass
class AcceptanceEvidence:
    """Everything the acceptance run observed: the evaluation's only input."""

    tests: SuiteReport | None  # None: the suite does not run the GPU tests
    jobs: list[JobResult]
    layer_rows: list[Row] = field(default_factory=list)  # the sweep's layers rows
    suite: str = "core"
    probe: EnergyProbe | None = None  # the energy suite's probe
    training: TrainingPlanStep | None = None  # the training suite's plan step
    cpu: bool = False  # a CPU smoke run (--cpu-smoke): no GPU test, no CUDA graph to judge

    def rows(self, phase: str | None = None) -> list[Row]:
        return [r for j in self.jobs if phase is None or j.job.phase == phase for r in as_rows(j.rows)]

    def completed(self, phase: str) -> bool:
        jobs = [j for j in self.jobs if j.job.phase == phase]
        return bool(jobs) and all(j.outcome == "completed" for j in jobs)

    def configs_by_run(self) -> dict[str, str]:
        return {j.run_id: j.job.config.label for j in self.jobs if j.run_id}


def evaluate(e: AcceptanceEvidence) -> list[AcceptanceCheck]:
    """The suite's checks, in the verdict's order."""
    sweep, layers, by_run = e.rows("sweep"), as_rows(e.layer_rows), e.configs_by_run()
    common = [check_jobs(e.jobs), check_errors(e.rows())]
    if e.suite == "regimes":
        return [
            *common,
            check_correctness(sweep),
            check_support(sweep),
            check_ranking(sweep),
            check_interval(sweep),
            check_capture(sweep),
            check_unsupported_layers(layers, by_run),
        ]
    if e.suite == "training":
        training = [*sweep, *e.rows("train_step"), *e.rows("plan")]
        return [
            training_tests(e.tests, e.cpu),
            *common,
            check_direction_support(sweep, layers),
            check_training_gradients(training),
            check_training_capture(training, judged=not e.cpu),
            check_plan_projection(e.training),
        ]
    if e.suite == "energy":
        energy = e.rows("energy")
        return [
            *common,
            check_energy_procedure(energy),
            check_energy(energy),
            check_telemetry(energy),
            check_linearity(e.probe),
            check_counter_period(e.probe),
        ]
    return [
        check_gpu_tests(e.tests) if e.tests is not None else check_gpu_tests(SuiteReport(0, 0, 0, note="not run")),
        *common,
        check_correctness(sweep),
        check_support(sweep),
        check_guess_choices(layers, by_run),
        check_unsupported_layers(layers, by_run),
        check_capture(sweep),
        check_same_kernels(layers),
        check_guess_vs_torch(sweep),
        check_guess_vs_torch(e.rows("eager"), graph=False),
        check_interval(sweep),
        check_cv(sweep, judged=False),
        check_cv(e.rows("eager"), name="cv per point (eager)", judged=False),
        check_repeat(sweep, e.rows("repeat")),
        check_oom(e.rows("oom"), e.completed("oom")),
        check_launch_bound([*sweep, *e.rows("eager")]),
    ]


def passed(checks: Sequence[AcceptanceCheck]) -> bool:
    return all(c.verdict != FAIL for c in checks)
