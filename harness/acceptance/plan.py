"""What the acceptance run measures, suite by suite: the models, sizes, algorithms and configurations of each
suite's sweep, its extra runs, and the goals the checks hold them to (GPU-CHECKS.md).

A GPU is lent for 15 minutes of device time at a time, machine start included, so the acceptance is split into
suites that each fit one lease, in order of value (``SUITES``): ``core`` (the GPU tests, every algorithm on the
forward path, correctness, stability, graph capture, overhead, the same point in 3 processes, out of memory),
``regimes`` (batch 1, 32, 256 x FP32 strict, TF32, FP16, BF16 x NCHW, NHWC for the algorithms that matter
there), ``energy`` (energy windows, idle before and after, linearity) and ``training`` (the backward families'
GPU tests, the support matrix per backward direction, the training step's gradients and graph capture, and a
training plan's projected step against its measured one)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.acceptance.compose import override_value
from harness.algorithms import CUDNN_ALGORITHMS, registry

MODELS = ("vgg16", "resnet50")
SIZES = (224,)
# every algorithm cuDNN runs (it does not implement DIRECT), its Find, and the framework's own
ALGOS = (*(a for a in CUDNN_ALGORITHMS if a != "direct"), "find", "torch")
QUICK_MODEL, QUICK_SIZE = "resnet50", 224  # --quick; also the point of the "same point twice" run

# Short points: the sanity stage with few iterations, verification at every point, no energy window.
COMMON = {
    "stage": "sanity",
    "stage.min_iters": "10",
    "stage.max_iters": "300",
    "stage.max_time_s": "3",  # timing goes on (up to 3 s) until the median's 95% interval is within the goal
    "stage.target_ci_rel": "0.01",
    "stage.layer_iters": "8",  # layer intervals need 6 or more (harness.measure.stats.MIN_SAMPLES)
    "stage.energy_window_s": "0",
    "stage.verify_every_point": "true",
    "gpu": "local",
    "device": "cuda",
}
ENERGY_WINDOW_S = 5  # seconds: against the counter's update lag and between-process noise
ENERGY_WINDOWS = 3  # windows per point, for an interval
# the energy procedure of each energy point (harness.measure.energy): 3 windows of 5 s, up to 30 s to reach a
# steady state and 15 s to cool down
ENERGY_STAGE = (
    ("stage.energy_window_s", str(ENERGY_WINDOW_S)),
    ("stage.energy_windows", str(ENERGY_WINDOWS)),
    ("stage.steady_cap_s", "30"),
    ("stage.cooldown_cap_s", "15"),
)
OOM_BATCHES = (1, 16384)  # vgg16's first activation at batch 16384, 224 px, fp32: 16384*64*224*224*4 B = 210 GB

# Goals (GPU-CHECKS.md)
CV_GOAL = 0.02  # information only since acceptance v2: the interval is judged (INTERVAL_GOAL)
INTERVAL_GOAL = 0.01  # each CUDA-graph point's 95% interval half-width over its median
REPEAT_GOAL = 0.03
REPEAT_PROCESSES = 3  # the "same point twice" run measures the point again in this many separate processes
GUESS_TORCH_GOAL = 1.05
ENERGY_GOAL = 0.10


@dataclass(frozen=True)
class Config:
    """A measurement configuration of the sweep: data type, math type, fallback policy."""

    dtype: str
    math: str
    fallback: str
    layout: str = "nchw"

    @property
    def label(self) -> str:
        return f"{self.dtype} {self.math} fallback={self.fallback}" + (
            f" {self.layout}" if self.layout != "nchw" else ""
        )

    def overrides(self) -> dict[str, str]:
        layout = {"layout": self.layout} if self.layout != "nchw" else {}
        return {"dtype": self.dtype, "math": self.math, "fallback": self.fallback} | layout


BASE = Config("float32", "fma", "none")
CONFIGS = (
    BASE,
    Config("float32", "fma", "torch"),
    Config("float32", "tensor_op", "none"),
)
# The regimes people deploy, most valuable first (a sweep cut short by its budget covers whole configurations):
# FP16/BF16 in NHWC, where Hopper's tensor-core kernels live, then the rest of the 4 x 2 grid.
REGIME_CONFIGS = tuple(
    Config(dtype, math, "none", layout)
    for dtype, math, layout in (
        ("float16", "tensor_op", "nhwc"),
        ("float16", "tensor_op", "nchw"),
        ("bfloat16", "tensor_op", "nhwc"),
        ("float32", "tensor_op", "nchw"),
        ("float32", "tensor_op", "nhwc"),
        ("bfloat16", "tensor_op", "nchw"),
        ("float32", "fma", "nchw"),
        ("float32", "fma", "nhwc"),
    )
)
REGIME_MODELS = ("resnet50", "vgg16")
REGIME_ALGOS = ("guess", "torch", "implicit_precomp_gemm", "winograd_nonfused", "fft_tiling")
REGIME_BATCHES = (1, 32, 256)


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
class SweepPlan:
    models: tuple[str, ...]
    sizes: tuple[int, ...]
    algos: tuple[str, ...] = ALGOS
    configs: tuple[Config, ...] = CONFIGS
    batches: tuple[int, ...] = (1,)
    extra: tuple[tuple[str, str], ...] = ()  # overrides of every sweep job
    # a training sweep: (direction, its algorithms) pairs, each direction's algorithms in place of ``algos``
    directions: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def _groups(self) -> list[tuple[tuple[tuple[str, str], ...], tuple[str, ...]]]:
        """(the jobs' extra overrides, their algorithms): one group, or one per direction of a training sweep."""
        if not self.directions:
            return [(self.extra, self.algos)]
        return [((*self.extra, ("direction", d)), algos) for d, algos in self.directions]

    def sweep_jobs(self) -> list[Job]:
        """Configuration by configuration, so that a sweep cut short by the budget covers whole configurations
        (a training sweep: direction by direction within each)."""
        return [
            Job("sweep", m, a, self.sizes, c, self.batches, extra)
            for c in self.configs
            for extra, algos in self._groups()
            for m in self.models
            for a in algos
        ]

    def all_algos(self) -> tuple[str, ...]:
        """Every algorithm the sweep runs (in any direction), in order of first use."""
        return tuple(dict.fromkeys(a for _, algos in self._groups() for a in algos))

    def points(self) -> int:
        algos = sum(len(algos) for _, algos in self._groups())
        return len(self.models) * len(self.sizes) * algos * len(self.configs) * len(self.batches)


# the core sweep records what ran each layer (harness.measure.kernels): whether guess and torch ran the same kernels
CORE_EXTRA = (("kernels", "true"),)


def make_plan(quick: bool) -> SweepPlan:
    """The core suite's sweep (``quick``: one model, one size)."""
    if quick:
        return SweepPlan((QUICK_MODEL,), (QUICK_SIZE,), extra=CORE_EXTRA)
    return SweepPlan(MODELS, SIZES, extra=CORE_EXTRA)


def regimes_plan(quick: bool) -> SweepPlan:
    """The regimes suite's sweep (``quick``: one model, guess and torch)."""
    if quick:
        return SweepPlan((QUICK_MODEL,), (QUICK_SIZE,), ("guess", "torch"), REGIME_CONFIGS, REGIME_BATCHES)
    return SweepPlan(REGIME_MODELS, (224,), REGIME_ALGOS, REGIME_CONFIGS, REGIME_BATCHES)


def extra_jobs(plan: SweepPlan) -> list[Job]:
    """The core suite's extra runs: guess and torch timed eagerly (the sweep times CUDA graphs, the default on a
    GPU: this is what an eager caller waits for, the host's issuing included), the same point again in
    separate processes, and a batch that runs out of memory."""
    eager = [
        Job("eager", m, a, plan.sizes, BASE, extra=(("graph", "false"), *_AGAIN))
        for m in plan.models
        for a in ("guess", "torch")
    ]
    return [
        *eager,
        Job("repeat", QUICK_MODEL, "guess", (QUICK_SIZE,), BASE, extra=(*_AGAIN, ("repeats", str(REPEAT_PROCESSES)))),
        Job("oom", "vgg16", "torch", (224,), BASE, OOM_BATCHES, _AGAIN),
    ]


def energy_jobs(quick: bool) -> list[Job]:
    """The energy suite's runs: energy windows on guess and torch as CUDA graphs, at batch 1 and 32 (quick:
    torch at batch 1)."""
    algos, batches = (("torch",), (1,)) if quick else (("torch", "guess"), (1, 32))
    window = (*ENERGY_STAGE, *_AGAIN)
    return [Job("energy", QUICK_MODEL, a, (QUICK_SIZE,), BASE, batches, window) for a in algos]


_AGAIN = (("remeasure", "true"),)  # a new run measures even what the store already has


# The training suite (issue 31): the backward families' GPU tests; per backward direction every algorithm with
# an enum there, guess, find and torch on resnet50 and vgg16 at 224 (fallback=guess: a layer an algorithm cannot
# run falls back to cuDNN's heuristic and its layer row says why); the training step of the algorithms with an
# enum in every direction, guess and torch on resnet50, a training plan made from those points
# (analysis.plans make --direction train_step) and run with algo=per_layer.
TRAIN_MODELS = ("resnet50", "vgg16")
TRAIN_SIZE = 224
TRAIN_BATCH = 8  # small enough for the budget (harness.acceptance.budget), large enough to be a training batch
TRAIN_PLAN_MODEL = "resnet50"
TRAIN_DIRECTIONS = ("backward_data", "backward_filter")
TRAIN_CONFIG = Config("float32", "fma", "guess")
TRAIN_TESTS = ("tests/test_cudnn_backward.py", "tests/test_swap_backward_cudnn.py", "tests/test_train_step.py")
PROJECTION_GOAL = 0.10  # |measured step / projected step - 1| of the training plan
# the CPU smoke run (--cpu-smoke): the same code on the CPU, a small model and size, the reference backend
SMOKE_MODEL, SMOKE_SIZE, SMOKE_BATCH = "resnet18", 32, 1
SMOKE_ALGOS = ("gemm", "torch")
SMOKE_CONFIG = Config("float32", "fma", "torch")
SMOKE_STAGE = (
    ("device", "cpu"),
    ("backend", "reference"),
    ("stage.min_iters", "3"),
    ("stage.max_iters", "5"),
    ("stage.max_time_s", "1"),
    ("stage.layer_iters", "6"),
)


def direction_algos(direction: str) -> tuple[str, ...]:
    """Every algorithm with a cuDNN enum in ``direction`` (the registry's), then guess, find and torch."""
    return (*(a.name for a in registry.algorithms() if a.cudnn_for(direction)), "guess", "find", "torch")


def step_algos() -> tuple[str, ...]:
    """The training step's algorithms: those with an enum in every direction, then guess and torch (the plan's
    candidates and baselines)."""
    every = [a.name for a in registry.algorithms() if all(a.cudnn_for(d) for d in ("forward", *TRAIN_DIRECTIONS))]
    return (*every, "guess", "torch")


def training_plan(quick: bool, cpu: bool = False) -> SweepPlan:
    """The training suite's sweep: per backward direction, its algorithms on TRAIN_MODELS (quick: resnet50;
    ``cpu``: the smoke run's model, size and algorithms on the reference backend)."""
    if cpu:
        directions = tuple((d, SMOKE_ALGOS) for d in TRAIN_DIRECTIONS)
        return SweepPlan((SMOKE_MODEL,), (SMOKE_SIZE,), (), (SMOKE_CONFIG,), (SMOKE_BATCH,), SMOKE_STAGE, directions)
    directions = tuple((d, direction_algos(d)) for d in TRAIN_DIRECTIONS)
    models = (TRAIN_PLAN_MODEL,) if quick else TRAIN_MODELS
    return SweepPlan(models, (TRAIN_SIZE,), (), (TRAIN_CONFIG,), (TRAIN_BATCH,), _AGAIN, directions)


def training_extras(plan: SweepPlan, quick: bool) -> list[Job]:
    """The training step, on the sweep's first model (resnet50; the sweep's configuration, size and batch), of
    each of ``step_algos`` the sweep ran in every direction: the points the training plan is made from. The
    plan's own run (algo=per_layer) is prepared once the plan exists (``training_plan_job``)."""
    (config,), (size,), (batch,) = plan.configs, plan.sizes, plan.batches
    ran = [set(algos) for _, algos in plan.directions]
    algos = [a for a in step_algos() if all(a in r for r in ran)]
    extra = (*plan.extra, ("direction", "train_step"))
    return [Job("train_step", plan.models[0], a, (size,), config, (batch,), extra) for a in algos]


def training_plan_job(step_jobs: list[Job], plan_file: Path) -> Job:
    """The training plan's run: algo=per_layer with the plan, at the train_step jobs' point."""
    first = step_jobs[0]
    extra = (*first.extra, ("plan", override_value(str(plan_file))))
    return Job("plan", first.model, "per_layer", first.sizes, first.config, first.batches, extra)


@dataclass(frozen=True)
class Suite:
    """One part of the acceptance that fits one lease of a GPU: its sweep, its extra runs, and whether it runs
    the GPU test suite."""

    name: str
    purpose: str
    gpu_tests: bool
    sweep: Callable[[bool], SweepPlan]  # quick -> the sweep
    extras: Callable[[SweepPlan, bool], list[Job]]  # (the sweep, quick) -> the extra runs
    energy_probe: bool = False  # the counter's update period and the 2N/N linearity (harness.acceptance.energy_probe)
    tests: tuple[str, ...] = ()  # the GPU tests it runs (pytest paths): empty, every test marked gpu
    training_plan: bool = False  # after the extra runs: a training plan made from them, run, and projected
    cpu_sweep: Callable[[], SweepPlan] | None = None  # --cpu-smoke: the sweep run on the CPU (None: GPU only)


SUITES = {
    s.name: s
    for s in (
        Suite(
            "core",
            "the GPU tests; every cuDNN algorithm, find and torch on vgg16 and resnet50 at 224 (FP32 strict with "
            "fallback none and torch, TF32) as CUDA graphs: correctness, support, guess's choices, graph capture, "
            "stability by interval, guess/torch; guess and torch eagerly; a point in 3 processes; out of memory",
            True,
            make_plan,
            lambda plan, quick: extra_jobs(plan),
        ),
        Suite(
            "regimes",
            "resnet50 and vgg16 at 224, batch 1/32/256, FP32 strict, TF32, FP16, BF16 x NCHW, NHWC for guess, torch, "
            "implicit_precomp_gemm, winograd_nonfused and fft_tiling: correctness, support and the ranking per regime",
            False,
            regimes_plan,
            lambda plan, quick: [],
        ),
        Suite(
            "energy",
            "energy windows of CUDA-graph replays (guess and torch, resnet50 at 224, batch 1 and 32: 3 windows of 5 s "
            "after a steady state, idle power before and after): the procedure, the counter against the power "
            "integral, clocks and throttling; the counter's update period and energy of 2N over N forwards",
            False,
            lambda quick: SweepPlan((), ()),
            lambda plan, quick: energy_jobs(quick),
            energy_probe=True,
        ),
        Suite(
            "training",
            "the backward families' GPU tests; per backward direction every algorithm with an enum there, guess, "
            "find and torch on resnet50 and vgg16 at 224 (batch 8): support per direction, gradients against torch, "
            "graph capture; the training step of resnet50 per algorithm, a training plan made from it and run: "
            "its projected step against its measured step",
            True,
            training_plan,
            training_extras,
            tests=TRAIN_TESTS,
            training_plan=True,
            cpu_sweep=lambda: training_plan(False, cpu=True),
        ),
    )
}
SUITE_ORDER = tuple(SUITES)  # in order of value: scripts/device-session.sh runs them in this order
