"""What the acceptance run measures: the models, sizes, algorithms and configurations of the sweep, its jobs,
the extra runs, and the goals the checks hold them to (GPU-CHECKS.md)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.acceptance.compose import override_value
from harness.algorithms import CUDNN_ALGORITHMS

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
class SweepPlan:
    models: tuple[str, ...]
    sizes: tuple[int, ...]
    algos: tuple[str, ...] = ALGOS
    configs: tuple[Config, ...] = CONFIGS

    def sweep_jobs(self) -> list[Job]:
        """Configuration by configuration, so that a sweep cut short by the budget covers whole configurations."""
        return [Job("sweep", m, a, self.sizes, c) for c in self.configs for m in self.models for a in self.algos]

    def points(self) -> int:
        return len(self.models) * len(self.sizes) * len(self.algos) * len(self.configs)


def make_plan(quick: bool) -> SweepPlan:
    return SweepPlan((QUICK_MODEL,), (QUICK_SIZE,)) if quick else SweepPlan(MODELS, SIZES)


def extra_jobs(plan: SweepPlan) -> list[Job]:
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
