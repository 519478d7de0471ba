"""What to measure, as plain dataclasses, validated once at the border.

The rest of the harness never sees Hydra: ``run_spec_from_dict`` turns the resolved config (a plain dict)
into a RunSpec, or raises ConfigError with a message that names the bad value and the valid choices.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config import keys
from harness.config.gpus import DEFAULT_CONTAINER_EXEC, GpuType, gpu_type_from_dict  # noqa: F401 (old path)
from harness.config.groups import CONF_DIR, group_choices  # noqa: F401 (old path)
from harness.config.model import ModelSpec, check_model_takes, model_spec_from_dict
from harness.config.sizes import SIZES_FORMS, resolve_sizes  # noqa: F401 (old path)
from harness.config.sizes import as_int as _int
from harness.errors import ConfigError
from harness.references import References, ReferencesError
from harness.references import load as load_references
from harness.results.layout import EARLIER_POINT_VALUES, Partition

if TYPE_CHECKING:
    from harness.algorithms.plan import Plan

log = logging.getLogger(__name__)

GpuSpec = GpuType  # the old name (pickled RunSpecs of jobs in flight name it)

DTYPES = keys.lookup("dtype").choices
DEVICES = keys.lookup("device").choices


@dataclass(frozen=True)
class StageSpec:
    """A stage of the staged sweep: which input sizes, and how hard to measure each point."""

    name: str
    sizes: tuple[int, ...]
    warmup_iters: int
    warmup_s: float
    min_iters: int
    max_iters: int
    max_time_s: float
    target_ci_rel: float
    layer_iters: int
    verify_every_point: bool = False
    energy_window_s: float = 5.0
    slurm: dict[str, Any] = field(default_factory=dict)
    # The energy procedure (harness.measure.energy.EnergySettings): hashed only where not at these defaults
    # (ENERGY_DEFAULTS), so that points measured before the keys existed keep their hash.
    energy_windows: int = 3
    steady_power_slope: float = 0.005
    steady_temp_slope_c_s: float = 0.05
    steady_span_s: float = 20.0
    steady_cap_s: float = 60.0
    cooldown_margin: float = 0.1
    cooldown_cap_s: float = 30.0
    # Relative tolerance of the check against references (None: each reference's own). Not part of how a
    # point is measured, so not in the config hash.
    reference_tolerance: float | None = None
    cost_default_ms: float = 20.0  # the dry run's latency where nothing measured covers a point (not hashed)


DIRECTIONS = keys.lookup("direction").choices  # forward, backward_data, backward_filter, train_step


@dataclass(frozen=True)
class TrainSpec:
    """The training step of a point whose direction is not forward (``train.*``; harness.measure.train_step)."""

    loss: str = "cross_entropy"  # cross_entropy | mse, on fixed random labels (targets)
    optimizer: str = "sgd"  # sgd | adam
    lr: float = 0.01
    momentum: float = 0.9  # sgd only
    input_grad: bool = False  # layer 0 computes its input's gradient
    amp: bool = False  # torch.autocast (float16) + GradScaler: GPU only (refused on the CPU by harness.run.runner)
    deterministic: bool = False  # torch.use_deterministic_algorithms during the job
    check_determinism: bool = False  # every backward layer call run twice, compared bitwise
    model_mode: str = "eval"  # eval | train: the model's mode during the step (harness.measure.train_step)


# train.* keys added after training hashes were first written, with the value every earlier hash was computed
# with: such a key enters the hash only where it differs (train.model_mode: the step used to run in eval)
EARLIER_TRAIN = {"model_mode": "eval"}


def _hashed_train(train: TrainSpec) -> dict[str, Any]:
    """``train.*`` as the config hash holds them: each key of EARLIER_TRAIN only where it differs from its
    earlier value."""
    return {k: v for k, v in asdict(train).items() if EARLIER_TRAIN.get(k, _UNSET) != v}


_UNSET = object()


def train_spec_from_dict(d: Mapping[str, Any] | None) -> TrainSpec:
    """``train.*``: each value checked against the registry (harness.config.keys), then the ranges."""
    d = dict(d or {})
    defaults = TrainSpec()
    values = {f.name: d.get(f.name, getattr(defaults, f.name)) for f in fields(TrainSpec)}
    for name, value in values.items():
        keys.check(f"train.{name}", value)
    values["lr"] = float(_positive("train.lr", values["lr"]))
    values["momentum"] = float(_positive("train.momentum", values["momentum"], allow_zero=True))
    return TrainSpec(**values)


@dataclass(frozen=True)
class RunSpec:
    """One job: a stage x model x algorithm x GPU type, over the stage's sizes and the batch sizes."""

    stage: StageSpec
    model: ModelSpec
    algo: str
    gpu: GpuSpec
    batch_sizes: tuple[int, ...]
    dtype: str
    seed: int
    device: str  # auto | cpu | cuda; resolved (cpu | cuda) by ``resolved_for``
    results_dir: Path
    remeasure: bool
    backend: str = "auto"
    fallback: str = "none"
    math: str = "tensor_op"  # resolved: fma | tensor_op (``auto`` is resolved by a fixed rule at the border)
    cudnn_benchmark: bool = False  # torch.backends.cudnn.benchmark for the job (the torch baseline's choice)
    graph: bool | None = None  # time CUDA-graph replays of the forward (GPU) instead of eager launches; None:
    # auto, a graph on a GPU (resolved by ``resolved_for``, where the device is known: on the node that measures)
    cpu_threads: int | None = None  # the framework's CPU threads for the job; None: auto, torch's default for the
    # process (the CPUs it may use); the count used is recorded on every row (cpu_threads)
    tolerance: dict[str, float] = field(default_factory=dict)
    trace: bool = False
    kernels: bool = False  # a pass after the timed ones records what ran each layer (harness.measure.kernels)
    references: References | None = None  # references=PATH, read and checked at the border
    plan: Plan | None = None  # plan=PATH for algo=per_layer, read and checked at the border
    repeats: int = 1  # each point measured in this many separate processes (not in the config hash)
    repeat: int = 0  # which of them this job is (0 .. repeats - 1): set by the launcher, one task per repeat
    layout: str = "nchw"  # nchw | nhwc (channels_last): part of the point key (layout column)
    l2: str = "warm"  # warm | cold: the L2 cache at each timed iteration; part of the point key (l2 column)
    direction: str = "forward"  # what one timed iteration is (DIRECTIONS); part of the point key (direction column)
    train: TrainSpec = field(default_factory=TrainSpec)  # the step of a direction other than forward

    def resolved_for(self, device_type: str) -> RunSpec:
        """The spec as measured on a ``device_type`` ("cuda" or "cpu") device: device=auto and graph=auto
        decided."""
        graph = device_type == "cuda" if self.graph is None else self.graph
        if (self.device, self.graph) == (device_type, graph):
            return self
        return replace(self, device=device_type, graph=graph)

    def partition(self) -> Partition:
        """The leaf of the results tree this job writes to."""
        return Partition(self.stage.name, self.gpu.name, self.model.name, self.algo)

    def measurement_config(self) -> dict[str, Any]:
        """What decides how one point is measured: not where results go, not which points are planned.

        Its hash (``config_hash``) is on every row; a rerun skips only points measured with the same one.
        """
        stage = {
            k: None if k in _BLANKED else v
            for k, v in asdict(self.stage).items()
            if k not in ENERGY_DEFAULTS and (k in _BLANKED or keys.lookup(f"stage.{k}").role is not keys.Role.NEUTRAL)
        }
        return {
            "stage": stage,
            "model": self.model.identity(),
            "algo": self.algo,
            "gpu": self.gpu.name,
            "dtype": self.dtype,
            "seed": self.seed,
            "backend": self.backend,
            "fallback": self.fallback,
            "math": self.math,
            "cudnn_benchmark": self.cudnn_benchmark,
            "graph": self.graph,
            "tolerance": self.tolerance,
        } | self._added_keys()

    def _added_keys(self) -> dict[str, Any]:
        """Keys hashed since hashes were first written, each only where it differs from what every earlier hash
        was computed with: a rerun of an earlier config skips what it measured, and a new value is measured
        again.

        - ``plan``: where given (algo=per_layer).
        - ``device``: cuda where graph=false. graph=true implies cuda (refused on the CPU), and graph=auto was
          already decided by the device; only graph=false on cuda hashed like the CPU, which keeps its hash.
        - ``cpu_threads``: where given (auto: torch's default, which follows the job's CPU allowance).
        - ``cpus_per_task``: where it differs from the stage's value of every earlier hash (the CPU allowance).
        - ``layout``, ``l2``: where they differ from the value every earlier row was measured at
          (harness.results.layout.EARLIER_POINT_VALUES).
        - ``direction`` (through EARLIER_POINT_VALUES) and the training step's ``train.*``: where the direction is
          not forward (a forward point never runs a step, so its hash is as before they existed);
          ``train.model_mode`` only where it is not eval, the mode every earlier training hash ran in
          (``EARLIER_TRAIN``).
        - the energy procedure's stage keys (ENERGY_DEFAULTS): each where it differs from the value its stage
          shipped with when the keys were added (``energy_default``).
        """
        added: dict[str, Any] = {}
        if self.plan is not None:
            added["plan"] = self.plan.digest()
        if self.device == "cuda" and self.graph is False:
            added["device"] = self.device
        if self.cpu_threads is not None:
            added["cpu_threads"] = self.cpu_threads
        cpus = self.stage.slurm.get("cpus_per_task")
        if cpus != _EARLIER_CPUS_PER_TASK.get(self.stage.name):
            added["cpus_per_task"] = cpus
        for axis, earlier in EARLIER_POINT_VALUES.items():
            if getattr(self, axis) != earlier:
                added[axis] = getattr(self, axis)
        if self.direction != "forward":
            added["train"] = _hashed_train(self.train)
        for key in ENERGY_DEFAULTS:
            value = getattr(self.stage, key)
            if value != energy_default(self.stage.name, key):
                added[f"stage.{key}"] = value
        return added

    def config_hash(self) -> str:
        blob = json.dumps(self.measurement_config(), sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# Stage fields hashed as null, as every earlier hash has them: the sizes are the point key, the SLURM resources
# enter through ``_added_keys`` (cpus_per_task). The others are hashed unless harness.config.keys calls them
# neutral (a key added with a null value would change the hash of every run measured before it existed).
_BLANKED = ("sizes", "slurm")
# stage.slurm.cpus_per_task of the stages as shipped when it entered the hash: at these it stays out of it.
_EARLIER_CPUS_PER_TASK = {"sanity": 4, "quick": 8, "full": 8}
# The energy procedure's stage keys and their defaults (StageSpec's): in the hash only where set otherwise.
ENERGY_DEFAULTS = {
    f.name: f.default
    for f in fields(StageSpec)
    if f.name
    in (
        "energy_windows",
        "steady_power_slope",
        "steady_temp_slope_c_s",
        "steady_span_s",
        "steady_cap_s",
        "cooldown_margin",
        "cooldown_cap_s",
    )
}
# sanity ships shorter caps (it catches broken combinations in minutes; it makes no energy claim)
_STAGE_ENERGY_DEFAULTS = {"sanity": {"steady_cap_s": 10.0, "cooldown_cap_s": 10.0}}


def energy_default(stage: str, key: str) -> Any:
    """The value of an energy stage key that stays out of the config hash: its stage's shipped value."""
    return _STAGE_ENERGY_DEFAULTS.get(stage, {}).get(key, ENERGY_DEFAULTS[key])


def _bool(key: str, value: Any) -> bool:
    return keys.check(key, value)


def _auto_bool(key: str, value: Any) -> bool | None:
    """true, false, or auto (None: decided where the device is known)."""
    if value is None:
        return None
    return None if keys.check(key, value) == "auto" else value


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"unknown {key} {value!r}; valid choices: {', '.join(choices)}")
    return str(value)


def _positive(key: str, value: Any, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key}={value!r} is not a number")
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{key}={value!r} must be {'>= 0' if allow_zero else '> 0'}")
    return value


def _whole(key: str, value: Any) -> int:
    """A whole number >= 1 (2.5 windows is refused, not rounded)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{key}={value!r} must be a whole number >= 1")
    return value


def stage_from_dict(d: Mapping[str, Any]) -> StageSpec:
    name = _choice("stage", d.get("name"), group_choices("stage"))
    counts = {k: int(_positive(f"stage.{k}", d[k])) for k in ("min_iters", "max_iters", "layer_iters")}
    if counts["max_iters"] < counts["min_iters"]:
        raise ConfigError(f"stage.max_iters={counts['max_iters']} is below stage.min_iters={counts['min_iters']}")
    return StageSpec(
        name=name,
        sizes=resolve_sizes(d.get("sizes"), d.get("size_range")),
        warmup_iters=int(_positive("stage.warmup_iters", d["warmup_iters"], allow_zero=True)),
        warmup_s=float(_positive("stage.warmup_s", d["warmup_s"], allow_zero=True)),
        max_time_s=float(_positive("stage.max_time_s", d["max_time_s"])),
        target_ci_rel=float(_positive("stage.target_ci_rel", d["target_ci_rel"])),
        verify_every_point=_bool("stage.verify_every_point", d.get("verify_every_point", False)),
        energy_window_s=float(_positive("stage.energy_window_s", d.get("energy_window_s", 5.0), allow_zero=True)),
        energy_windows=_whole("stage.energy_windows", d.get("energy_windows", energy_default(name, "energy_windows"))),
        **{
            k: float(_positive(f"stage.{k}", d.get(k, energy_default(name, k)), allow_zero=k.endswith("cap_s")))
            for k in ENERGY_DEFAULTS
            if k != "energy_windows"
        },
        slurm=dict(d.get("slurm") or {}),
        reference_tolerance=_optional_tolerance("stage.reference_tolerance", d.get("reference_tolerance")),
        cost_default_ms=float(_positive("stage.cost_default_ms", d.get("cost_default_ms", 20.0))),
        **counts,
    )


def _optional_tolerance(key: str, value: Any) -> float | None:
    if value is None:
        return None
    return float(_positive(key, value, allow_zero=True))


def resolve_job_environment(config: dict[str, Any]) -> dict[str, Any]:
    """At submission: ``gpu.python`` and ``gpu.container`` given as relative paths made absolute (the job
    may start elsewhere), and refused where they name no file here.

    A bare command (``gpu.python=python3``) is left to the node's PATH; a python inside a container is the
    image's, not checked here; an image given as a URI (``docker://...``) is left to the container runtime.
    """
    gpu = dict(config.get("gpu") or {})
    container, python = gpu.get("container"), gpu.get("python")
    if isinstance(container, str) and container and "://" not in container:
        path = Path(container).expanduser().resolve()
        if not path.exists():
            raise ConfigError(
                f"gpu.container={container} (gpu={gpu.get('name')}): no such image here ({path}); "
                "build it from containers/ (README: Mixed clusters) or give its path"
            )
        gpu["container"] = str(path)
    if isinstance(python, str) and "/" in python and not container:
        path = Path(python).expanduser()
        path = path if path.is_absolute() else Path.cwd() / path  # not resolved: a venv's python is a symlink
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ConfigError(
                f"gpu.python={python} (gpu={gpu.get('name')}): no executable file at {path}; give "
                "the interpreter of an environment whose torch has kernels for this GPU type, e.g. "
                "gpu.python=/opt/envs/cu126/bin/python, or null for the one that submits"
            )
        gpu["python"] = str(path)
    return {**config, "gpu": gpu}


def references_from(value: Any, gpu: str) -> References | None:
    """``references=PATH``: the file read and validated here, once (null: no check)."""
    if value is None:
        return None
    if not isinstance(value, (str, Path)) or not str(value):
        raise ConfigError(
            f"references={value!r} is not valid: give the path of a references file "
            f"(python -m analysis.bless writes one), or null"
        )
    try:
        refs = load_references(value)
    except ReferencesError as e:
        raise ConfigError(f"references={value} refused: {e}") from None
    if gpu not in refs.gpus:
        log.warning(
            "references %s hold no entries for gpu=%s (they have: %s): every point will be no_reference",
            value,
            gpu,
            ", ".join(sorted(refs.gpus)),
        )
    return refs


def plan_from(value: Any, algo: str) -> Plan | None:
    """``plan=PATH``: the per-layer plan that ``algo=per_layer`` runs, read and validated here, once."""
    if value is None:
        if algo == "per_layer":
            raise ConfigError(
                "algo=per_layer needs plan=PATH, a per-layer plan file "
                "(python -m analysis.plan make writes one; README: Per-layer plans)"
            )
        return None
    if algo != "per_layer":
        raise ConfigError(f"plan={value} is given but algo={algo}: a plan runs only with algo=per_layer")
    if not isinstance(value, (str, Path)) or not str(value):
        raise ConfigError(f"plan={value!r} is not valid: give the path of a plan file, or null")
    from harness.algorithms.plan import PlanError, read  # torch: kept out of config-only imports

    try:
        return read(value)
    except PlanError as e:
        raise ConfigError(f"plan={value} refused: {e}") from None


def cpu_threads_from(value: Any) -> int | None:
    """``cpu_threads``: auto (None: torch's default for the process) or a positive number of threads (the
    registry's type, harness.config.keys)."""
    return None if value is None or keys.check("cpu_threads", value) == "auto" else value


def batch_sizes_from(value: Any) -> tuple[int, ...]:
    values = value if isinstance(value, (list, tuple)) else [value]
    sizes = [_int("batch_size", v) for v in values]
    if not sizes or any(b <= 0 for b in sizes):
        raise ConfigError(f"batch_size={value!r} is not valid: give positive integers, e.g. batch_size=[1,8]")
    return tuple(sorted(set(sizes)))


def run_spec_from_dict(cfg: Mapping[str, Any]) -> RunSpec:
    """Validate the resolved config (a plain dict, as Hydra composed it): first against the registry of keys
    (harness.config.keys: every key declared, every declared type and choice), then what the registry cannot
    say (ranges, files, combinations)."""
    keys.check_config(cfg)
    model = model_spec_from_dict(cfg["model"])
    gpu = gpu_type_from_dict(cfg["gpu"], group_choices("gpu"))
    from harness import algorithms as algos

    tolerance = {k: float(_positive(f"tolerance.{k}", v)) for k, v in (cfg.get("tolerance") or {}).items()}
    algo = algos.canonical_name(cfg["algo"]["name"])
    check_model_takes(model, algo)
    return RunSpec(
        stage=stage_from_dict(cfg["stage"]),
        model=model,
        algo=algo,
        gpu=gpu,
        batch_sizes=batch_sizes_from(cfg.get("batch_size", 1)),
        dtype=keys.check("dtype", cfg.get("dtype", "float32")),
        seed=_int("seed", cfg.get("seed", 0)),
        device=keys.check("device", cfg.get("device", "auto")),
        results_dir=Path(str(cfg.get("results_dir", "results"))),
        remeasure=_bool("remeasure", cfg.get("remeasure", False)),
        backend=keys.check("backend", cfg.get("backend", "auto")),
        fallback=keys.check("fallback", cfg.get("fallback", "none")),
        math=algos.resolve_math(keys.check("math", cfg.get("math", "auto"))),
        cudnn_benchmark=_bool("cudnn_benchmark", cfg.get("cudnn_benchmark", False)),
        graph=_auto_bool("graph", cfg.get("graph", "auto")),
        cpu_threads=cpu_threads_from(cfg.get("cpu_threads", "auto")),
        tolerance=tolerance,
        trace=_bool("trace", cfg.get("trace", False)),
        kernels=_bool("kernels", cfg.get("kernels", False)),
        references=references_from(cfg.get("references"), gpu.name),
        plan=plan_from(cfg.get("plan"), algo),
        **repeats_from(cfg),
        layout=keys.check("layout", cfg.get("layout", "nchw")),
        l2=keys.check("l2", cfg.get("l2", "warm")),
        direction=_direction_fits_plan(keys.check("direction", cfg.get("direction", "forward")), cfg.get("plan"), algo),
        train=train_spec_from_dict(cfg.get("train")),
    )


def _direction_fits_plan(direction: str, plan_path: Any, algo: str) -> str:
    """A direction other than forward with algo=per_layer needs a training plan (one algorithm per layer per
    direction, version 2): a forward-only plan chooses nothing for the backward directions."""
    if direction == "forward" or algo != "per_layer" or plan_path is None:
        return direction
    plan = plan_from(plan_path, algo)
    if plan is not None and not plan.is_training:
        raise ConfigError(
            f"plan={plan_path} is a forward-only plan (version 1); direction={direction} needs a training plan "
            "(version 2: algo_backward_data and algo_backward_filter per layer), or direction=forward"
        )
    return direction


def repeats_from(cfg: Mapping[str, Any]) -> dict[str, int]:
    """``repeats`` (how many processes measure each point) and ``repeat`` (which one this job is: the
    launcher's, one task per repeat, added to each task's config by harness.launch.submit.make_tasks; not a
    key of the composed config, so not in harness.config.keys)."""
    repeats = _int("repeats", cfg.get("repeats", 1))
    if repeats < 1:
        raise ConfigError(
            f"repeats={repeats} is not valid: give the number of separate processes that measure "
            f"each point, 1 or more (1: one process, no repeats)"
        )
    repeat = _int("repeat", cfg.get("repeat", 0))
    if not 0 <= repeat < repeats:
        raise ConfigError(
            f"repeat={repeat} is not valid with repeats={repeats}: 0 to {repeats - 1} (the launcher "
            f"sets it; set repeats=K instead)"
        )
    return {"repeats": repeats, "repeat": repeat}
