"""Every key of the composed config, declared once: its type, its valid values where they are finite, and its
role, that is whether (and how) it can change a measured number, with the reason.

The roles decide two things. The config hash (``harness.config.spec``) holds every key that can change a
number, so that a rerun measures again what another value of it measured. The analysis keeps the rows of
different settings apart (``analysis.settings``): a setting is a key that changes what is measured, recorded
in a points column, and rows of two settings are never compared and never replace each other.

``python -m harness.config.keys`` prints the registry as a Markdown table.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from harness.errors import ConfigError


class Role(str, Enum):
    POINT = "point"  # part of the point key (stage, gpu, model, algo, input_size, batch_size, dtype)
    SETTING = "setting"  # changes what is measured: hashed, recorded per row, never compared across
    HASHED = "hashed"  # changes how (how long, how checked) the same quantity is measured: hashed; newest row wins
    ENVIRONMENT = "environment"  # chooses the node or software a job runs on: recorded per row, not hashed
    NEUTRAL = "neutral"  # cannot change a measured number


@dataclass(frozen=True)
class Key:
    """One key of the composed config. ``name`` is its dotted path; a name ending in ``.*`` covers the mapping
    and any key under it (sbatch options, a model's constructor arguments)."""

    name: str
    type: str
    role: Role
    why: str
    choices: tuple[str, ...] | None = None  # valid values, where finite (config groups: conf/<group>/*.yaml)
    column: str | None = None  # the points column that records it (settings and point-key parts)
    option: str | None = None  # the analysis' filter option for a setting (--math fma)
    nullable: bool = False  # null is a valid value (an optional file, "unknown" datasheet numbers)

    def covers(self, path: str) -> bool:
        if self.name.endswith(".*"):
            stem = self.name[:-2]
            return path == stem or path.startswith(stem + ".")
        return path == self.name


_P, _S, _H, _E, _N = Role.POINT, Role.SETTING, Role.HASHED, Role.ENVIRONMENT, Role.NEUTRAL
_SAMPLING = "how long and how often the same point is sampled: the precision, not the quantity"

KEYS: tuple[Key, ...] = (
    # the point key, declared in its column order (point_key(): the leaf's stage, gpu, model, algo, then the
    # point within the leaf)
    Key(
        "stage.name",
        "config group (conf/stage)",
        _P,
        "the stage: which sizes and how hard (stage column)",
        column="stage",
    ),
    Key(
        "gpu.name",
        "config group (conf/gpu)",
        _P,
        "the GPU type (gpu column); local: whatever this machine has, named by device_name",
        column="gpu",
    ),
    Key("model.name", "str", _P, "the model (model column; a file's content hash in model_hash)", column="model"),
    Key(
        "model.path",
        "path",
        _P,
        "a model file: its stem names the model, its content hash is model_hash",
        column="model",
        nullable=True,
    ),
    Key(
        "model.factory",
        "str",
        _P,
        "the user's model function: names the model, its source's hash is model_hash",
        column="model",
        nullable=True,
    ),
    Key("algo.name", "config group (conf/algo)", _P, "what runs the conv layers (algo column)", column="algo"),
    Key("stage.sizes", "sizes", _P, "the input sizes: one point each (input_size column)", column="input_size"),
    Key("stage.size_range", "mapping", _P, "deprecated spelling of stage.sizes", column="input_size", nullable=True),
    Key("batch_size", "int | list[int]", _P, "one point per batch size (batch_size column)", column="batch_size"),
    Key("dtype", "str", _P, "the data type (dtype column)", ("float32", "float16", "bfloat16"), column="dtype"),
    # settings: what is measured
    Key(
        "device",
        "str",
        _S,
        "cpu and cuda measure different hardware (device column; auto: cuda where there is one)",
        ("auto", "cpu", "cuda"),
        column="device",
        option="device",
    ),
    Key(
        "backend",
        "str",
        _S,
        "cuDNN's kernels or the reference implementation run the layers (backend column)",
        ("auto", "cudnn", "reference"),
        column="backend",
        option="backend",
    ),
    Key(
        "math",
        "str",
        _S,
        "strict FP32 (fma) or tensor cores (tensor_op: TF32) (math_type column)",
        ("auto", "fma", "tensor_op"),
        column="math_type",
        option="math",
    ),
    Key(
        "fallback",
        "str",
        _S,
        "what runs the layers the algorithm cannot: it changes a row where a layer fell back "
        "(fallback_policy column)",
        ("none", "guess", "torch"),
        column="fallback_policy",
        option="fallback",
    ),
    Key(
        "cudnn_benchmark",
        "bool",
        _S,
        "the framework's convolutions use the heuristic's or the timed-fastest " "algorithm (cudnn_benchmark column)",
        ("false", "true"),
        column="cudnn_benchmark",
        option="benchmark",
    ),
    Key(
        "graph",
        "bool | auto",
        _S,
        "CUDA-graph replays time the GPU's work, eager launches the host's issuing too " "(cuda_graph column)",
        ("auto", "false", "true"),
        column="cuda_graph",
        option="graph",
    ),
    Key(
        "cpu_threads",
        "positive int | auto",
        _S,
        "the framework's CPU threads set a CPU point's speed (cpu_threads column; "
        "auto: torch's default, the CPUs the job may use)",
        column="cpu_threads",
        option="cpu_threads",
    ),
    Key(
        "plan",
        "path",
        _S,
        "algo=per_layer: which algorithm runs each layer (plan_hash column)",
        column="plan_hash",
        option="plan",
        nullable=True,
    ),
    # hashed: how the same quantity is measured
    Key("stage.warmup_iters", "int", _H, _SAMPLING),
    Key("stage.warmup_s", "float", _H, _SAMPLING),
    Key("stage.min_iters", "int", _H, _SAMPLING),
    Key("stage.max_iters", "int", _H, _SAMPLING),
    Key("stage.max_time_s", "float", _H, _SAMPLING),
    Key("stage.target_ci_rel", "float", _H, _SAMPLING),
    Key("stage.layer_iters", "int", _H, _SAMPLING + " (the per-layer pass)"),
    Key("stage.energy_window_s", "float", _H, "the length of the energy window: the counter's granularity"),
    Key(
        "stage.verify_every_point",
        "bool",
        _H,
        "which points are checked against the baseline (their status)",
        ("false", "true"),
    ),
    Key("tolerance.*", "mapping of float", _H, "the verification threshold per dtype decides a point's status"),
    Key("seed", "int", _H, "the random weights' and input's values: the same work at the same shapes"),
    Key(
        "model.kwargs.*",
        "mapping",
        _H,
        "the model's constructor arguments: part of the model's identity in the "
        "hash (not in model_hash for a torchvision model)",
    ),
    Key(
        "model.input_channels", "int", _H, "a file or factory model's input channels: the input's shape", nullable=True
    ),
    Key(
        "stage.slurm.cpus_per_task",
        "int",
        _H,
        "the job's CPU allowance: what cpu_threads=auto resolves to (the "
        "cpu_threads column records the count, the setting); in the hash where it differs from the stage's default",
    ),
    # environment: recorded per row, not hashed
    Key(
        "gpu.slurm.*",
        "mapping",
        _E,
        "where a SLURM job runs (partition, gres, constraint, other sbatch options): "
        "the device it got is device_name",
        nullable=True,
    ),
    Key(
        "gpu.python", "path", _E, "the interpreter: its torch, CUDA and cuDNN versions are on every row", nullable=True
    ),
    Key(
        "gpu.container",
        "path",
        _E,
        "the image jobs run in: its torch, CUDA and cuDNN versions are on every row",
        nullable=True,
    ),
    Key("gpu.container_exec", "str", _E, "how the image runs a command; what runs is recorded as for gpu.container"),
    # neutral: cannot change a measured number
    Key("gpu.nvml_name", "str", _N, "a check: a run refuses a device whose name does not contain it", nullable=True),
    Key(
        "gpu.spec.*",
        "mapping of float",
        _N,
        "datasheet numbers: only the roofline columns derived from them",
        nullable=True,
    ),
    Key(
        "stage.reference_tolerance",
        "float",
        _N,
        "a check against references after measuring (reference_status)",
        nullable=True,
    ),
    Key("stage.slurm.timeout_min", "int", _N, "the job's time limit: a job cut short resumes where it stopped"),
    Key("stage.slurm.mem_gb", "int", _N, "the job's host memory limit"),
    # the launcher: how jobs are submitted and followed, not how they measure (harness.launch.submit.LauncherSpec)
    Key(
        "launcher.name",
        "config group (conf/launcher)",
        _N,
        "where jobs run: here, on SLURM, or auto",
        ("auto", "local", "slurm"),
    ),
    Key("launcher.folder", "path", _N, "submitit's job folders and the sweep manifests"),
    Key("launcher.array_parallelism", "int", _N, "how many tasks of a job array run at the same time"),
    Key("launcher.max_requeues", "int", _N, "requeues after a timeout or preemption"),
    Key("launcher.signal_delay_s", "int", _N, "how long before its time limit SLURM signals a job"),
    Key("launcher.account", "str", _N, "sbatch --account", nullable=True),
    Key("launcher.qos", "str", _N, "sbatch --qos", nullable=True),
    Key("launcher.wait", "bool", _N, "whether the command stays until the jobs end", ("false", "true")),
    Key("results_dir", "path", _N, "where results are written"),
    Key("force", "bool", _N, "whether a stage whose sanity stage failed runs", ("false", "true")),
    Key("remeasure", "bool", _N, "whether measured points are measured again (adds rows)", ("false", "true")),
    Key(
        "repeats",
        "int",
        _N,
        "how many separate processes measure each point: replicates of one point, pooled by "
        "the analysis (repeats column), never a new point or another setting",
    ),
    Key("trace", "bool", _N, "a profiler trace of extra iterations after the timed ones", ("false", "true")),
    Key("references", "path", _N, "a check of each point against blessed references (reference_status)", nullable=True),
)


class UnknownKey(KeyError):
    pass


# Keys a user's plugin declares (``declare``): checked like the harness's own, listed after them.
_DECLARED: list[Key] = []


def declare(*new: Key) -> None:
    """Declare keys that a user's plugin reads (e.g. ``declare(Key("myplugin.*", "mapping", Role.NEUTRAL,
    "my plugin's settings"))`` in the module that registers the plugin): without this, the composed config's
    check refuses them as unknown. A name the registry already covers is refused (one owner per key)."""
    for key in new:
        taken = [k.name for k in all_keys() if k.covers(key.name.removesuffix(".*")) or key.covers(k.name)]
        if taken:
            raise ValueError(f"key {key.name!r} is already declared as {taken[0]!r}")
        _DECLARED.append(key)


def all_keys() -> tuple[Key, ...]:
    return (*KEYS, *_DECLARED)


def lookup(path: str) -> Key:
    """The registry's entry for a dotted config path; UnknownKey (naming the path) where none covers it."""
    for key in all_keys():
        if key.covers(path):
            return key
    raise UnknownKey(
        f"config key {path!r} is not in harness/config/keys.py: declare its type and its role "
        f"({', '.join(r.value for r in Role)})"
    )


def of_role(role: Role) -> tuple[Key, ...]:
    return tuple(k for k in KEYS if k.role is role)


SETTINGS: tuple[Key, ...] = of_role(Role.SETTING)


def point_key() -> tuple[str, ...]:
    """The columns that identify a point across the results tree, in order: the columns of the keys whose
    role is POINT, in their order of declaration (several keys may share a column: model.name, model.path
    and model.factory all name the model). harness.results.layout.POINT_KEY is this (tests/test_results_layout.py)."""
    columns: list[str] = []
    for key in of_role(Role.POINT):
        assert key.column is not None, f"point key {key.name} names no column"
        if key.column not in columns:
            columns.append(key.column)
    return tuple(columns)


def leaves(config: dict, prefix: str = "") -> list[str]:
    """The dotted paths of a composed config's values (an empty mapping is a value: model.kwargs={})."""
    out = []
    for name, value in config.items():
        path = f"{prefix}{name}"
        if isinstance(value, dict) and value:
            out += leaves(value, path + ".")
        else:
            out.append(path)
    return out


# Keys the launcher adds to a task's config (harness.launch.submit.make_tasks), never composed by Hydra: a job's
# config carries them, so the check of a composed config accepts them by name.
LAUNCHER_ADDED = ("repeat",)


def closest(path: str) -> str | None:
    """The declared key closest to a misspelled ``path`` (an open mapping by its stem), or None."""
    names = [k.name.removesuffix(".*") for k in all_keys()]
    close = difflib.get_close_matches(path, names, n=1, cutoff=0.6)
    return close[0] if close else None


def owner(path: str) -> tuple[str, Key] | None:
    """The declared key that holds ``path`` and its own path: the key itself, an open mapping over it, or a key
    whose value is a mapping (stage.sizes={start:..}); None where nothing declares it."""
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        prefix = ".".join(parts[:n])
        try:
            return prefix, lookup(prefix)
        except UnknownKey:
            continue
    return None


def check_known(config: Mapping[str, Any]) -> None:
    """Refuse a key of the composed config that the registry does not declare (Hydra's ``+key=value`` adds
    any key, and nothing would read it), naming the closest declared key."""
    for path in leaves(dict(config)):
        if path in LAUNCHER_ADDED or owner(path) is not None or _holds_declared(path):
            continue  # _holds_declared: an empty mapping whose keys are declared (stage.slurm={})
        near = closest(path)
        hint = f"; did you mean {near}?" if near else ""
        raise ConfigError(
            f"unknown key {path!r}: nothing reads it{hint} (every key: python -m "
            "harness.config.keys; a plugin's keys: harness.config.keys.declare)"
        )


def _holds_declared(path: str) -> bool:
    return any(k.name.startswith(path + ".") for k in all_keys())


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_float(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_path(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


# A type of the registry that can be checked, and what is valid, in words.
_TYPES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_is_int, "give an integer"),
    "float": (_is_float, "give a number"),
    "mapping of float": (_is_float, "give a number"),  # a value under the mapping (tolerance.float32)
    "bool": (lambda v: isinstance(v, bool), "valid choices: true, false"),
    "str": (lambda v: isinstance(v, str), "give a string"),
    "path": (_is_path, "give a path (a non-empty string)"),
    "positive int | auto": (
        lambda v: v == "auto" or (_is_int(v) and v >= 1),
        "valid choices: auto, or a positive integer",
    ),
    "bool | auto": (lambda v: v == "auto" or isinstance(v, bool), "valid choices: auto, true, false"),
    "int | list[int]": (
        lambda v: _is_int(v) or (isinstance(v, list) and all(_is_int(x) for x in v)),
        "give an integer or a list of integers",
    ),
}


def checkable(key: Key) -> bool:
    """Whether ``check`` checks values of ``key`` (its type is one of _TYPES, or it lists its choices)."""
    return key.type in _TYPES or key.choices is not None


def check(path: str, value: Any) -> Any:
    """``value`` if it has the type and is among the choices that the registry declares for ``path``; else
    ConfigError naming the key, the value and what is valid. Ranges (positive, below another key) are the
    config's border's (harness.config.spec)."""
    key = lookup(path)
    if value is None:
        if key.nullable:
            return value
        raise ConfigError(f"{path}=null is not valid; {_valid(key)}")
    test = _TYPES.get(key.type)
    if test is not None and key.type in ("bool", "bool | auto"):  # their choices are the type's
        if not test[0](value):
            raise ConfigError(f"{path}={value!r} is not valid; {_valid(key)}")
        return value
    if key.choices is not None and value not in key.choices:
        raise ConfigError(f"unknown {path} {value!r}; valid choices: {', '.join(key.choices)}")
    if test is not None and not test[0](value):
        raise ConfigError(f"{path}={value!r} is not valid; {_valid(key)}")
    return value


def _valid(key: Key) -> str:
    if key.type in _TYPES:
        what = _TYPES[key.type][1]
    elif key.choices is not None:
        what = f"valid choices: {', '.join(key.choices)}"
    else:
        what = f"give a {key.type}"
    return what + (", or null" if key.nullable else "")


def check_config(config: Mapping[str, Any]) -> None:
    """The composed config against the registry: every key declared, every checkable value valid."""
    check_known(config)
    checked: set[str] = set()
    for path in leaves(dict(config)):
        held = owner(path)
        if held is None or held[0] in checked or not checkable(held[1]):
            continue
        checked.add(held[0])
        check(held[0], _value_at(config, held[0]))


def _value_at(config: Mapping[str, Any], path: str) -> Any:
    value: Any = config
    for part in path.split("."):
        value = value[part]
    return value


def markdown() -> str:
    rows = ["| key | type | role | valid values | column | why |", "|---|---|---|---|---|---|"]
    for k in all_keys():
        rows.append(
            f"| `{k.name}` | {k.type} | {k.role.value} | {', '.join(k.choices) if k.choices else ''} | "
            f"{k.column or ''} | {k.why} |"
        )
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
