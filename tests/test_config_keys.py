"""The registry of configuration keys (harness.config.keys): it classifies every key of every composed config,
its valid values are the config border's, and the config hash follows its roles."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from harness import algorithms
from harness.config import keys
from harness.config.keys import Role
from harness.config.spec import DEVICES, DTYPES, group_choices
from harness.errors import ConfigError
from harness.results.read import read
from harness.run import runner
from tests.conftest import FAST
from tests.helpers import compose_configs, make_spec

GROUPS = ("stage", "model", "algo", "gpu", "launcher")


def _every_option() -> list[list[str]]:
    """One composition per option of every config group (the others at their defaults), and the mappings'
    free keys filled in (a model's constructor argument, an extra sbatch option, a SLURM resource)."""
    overrides = [[f"{group}={option}"] for group in GROUPS for option in group_choices(group)]
    overrides += [["+model.kwargs.zero_init_residual=true", "gpu=h100", "+gpu.slurm.reservation=r1"]]
    return [["plan=null"], *overrides]


def test_every_key_of_every_composed_config_is_classified():
    paths = {path for config in compose_configs(_every_option()) for path in keys.leaves(config)}
    unknown = []
    for path in sorted(paths):
        try:
            keys.lookup(path)
        except keys.UnknownKey:
            unknown.append(path)
    assert not unknown, f"declare these in harness/config/keys.py: {unknown}"
    stale = [k.name for k in keys.KEYS if not any(k.covers(p) for p in paths)]
    assert not stale, f"in the registry but in no composed config: {stale}"


def test_an_undeclared_key_is_refused_by_name():
    with pytest.raises(keys.UnknownKey, match="'stage.colour' is not in harness/config/keys.py"):
        keys.lookup("stage.colour")


def test_the_registry_lists_the_values_the_config_border_accepts():
    assert keys.lookup("dtype").choices == DTYPES and keys.lookup("device").choices == DEVICES
    assert keys.lookup("math").choices == algorithms.MATH
    assert keys.lookup("fallback").choices == algorithms.FALLBACKS
    assert keys.lookup("backend").choices == algorithms.BACKEND_CHOICES


def test_every_setting_is_recorded_in_a_points_column():
    from harness.results.schema import POINTS

    for key in keys.SETTINGS:
        assert key.column in POINTS.names and key.option, key.name


# (overrides of the base, overrides of the changed config, the device both are resolved for): a key changed
# from its default. A key the registry calls setting or hashed must change the hash; environment or neutral,
# leave it. Point-key parts change the partition or the points instead.
CPU = ["device=cpu"]
PROBES: dict[str, tuple[list[str], list[str], str]] = {
    "device": (["device=cpu", "graph=false"], ["device=cuda", "graph=false"], "cpu|cuda"),
    "backend": (CPU, ["backend=reference"], "cpu"),
    "math": (CPU, ["math=fma"], "cpu"),
    "fallback": (CPU, ["fallback=torch"], "cpu"),
    "cudnn_benchmark": (CPU, ["cudnn_benchmark=true"], "cpu"),
    "graph": (["device=cuda"], ["device=cuda", "graph=false"], "cuda"),
    "cpu_threads": (CPU, ["cpu_threads=3"], "cpu"),
    "stage.warmup_iters": (CPU, ["stage.warmup_iters=7"], "cpu"),
    "stage.warmup_s": (CPU, ["stage.warmup_s=0.5"], "cpu"),
    "stage.min_iters": (CPU, ["stage.min_iters=11"], "cpu"),
    "stage.max_iters": (CPU, ["stage.max_iters=60"], "cpu"),
    "stage.max_time_s": (CPU, ["stage.max_time_s=6"], "cpu"),
    "stage.target_ci_rel": (CPU, ["stage.target_ci_rel=0.1"], "cpu"),
    "stage.layer_iters": (CPU, ["stage.layer_iters=6"], "cpu"),
    "stage.energy_window_s": (CPU, ["stage.energy_window_s=1"], "cpu"),
    "stage.energy_windows": (CPU, ["stage.energy_windows=5"], "cpu"),
    "stage.steady_power_slope": (CPU, ["stage.steady_power_slope=0.01"], "cpu"),
    "stage.steady_temp_slope_c_s": (CPU, ["stage.steady_temp_slope_c_s=0.1"], "cpu"),
    "stage.steady_span_s": (CPU, ["stage.steady_span_s=5"], "cpu"),
    "stage.steady_cap_s": (CPU, ["stage.steady_cap_s=30"], "cpu"),
    "stage.cooldown_margin": (CPU, ["stage.cooldown_margin=0.05"], "cpu"),
    "stage.cooldown_cap_s": (CPU, ["stage.cooldown_cap_s=60"], "cpu"),
    "stage.verify_every_point": (CPU, ["stage.verify_every_point=false"], "cpu"),
    "tolerance.*": (CPU, ["tolerance.float32=0.01"], "cpu"),
    "seed": (CPU, ["seed=1"], "cpu"),
    "model.kwargs.*": (CPU, ["+model.kwargs.zero_init_residual=true"], "cpu"),
    "stage.slurm.cpus_per_task": (CPU, ["stage.slurm.cpus_per_task=2"], "cpu"),
    "gpu.slurm.*": (["gpu=h100"], ["gpu=h100", "gpu.slurm.partition=hopper", "+gpu.slurm.reservation=r1"], "cuda"),
    "gpu.python": (CPU, ["gpu.python=python3"], "cpu"),
    "gpu.container": (CPU, ["gpu.container=/images/torch.sif"], "cpu"),
    "gpu.container_exec": (CPU, ["gpu.container_exec=singularity exec --nv"], "cpu"),
    "gpu.nvml_name": (["gpu=h100"], ["gpu=h100", "gpu.nvml_name=H100 NVL"], "cuda"),
    "gpu.spec.*": (["gpu=h100"], ["gpu=h100", "gpu.spec.fp32_tflops=67"], "cuda"),
    "stage.reference_tolerance": (CPU, ["stage.reference_tolerance=0.1"], "cpu"),
    "stage.slurm.timeout_min": (CPU, ["stage.slurm.timeout_min=5"], "cpu"),
    "stage.adaptive.*": (CPU, ["stage.adaptive.resolution=4", "stage.adaptive.coarse=5"], "cpu"),
    "stage.budget_gpu_h": (CPU, ["stage.budget_gpu_h=2.5"], "cpu"),
    "stage.slurm.mem_gb": (CPU, ["stage.slurm.mem_gb=2"], "cpu"),
    "launcher.name": (CPU, ["launcher=slurm"], "cpu"),
    "launcher.folder": (CPU, ["launcher.folder=elsewhere"], "cpu"),
    "launcher.array_parallelism": (CPU, ["launcher.array_parallelism=4"], "cpu"),
    "launcher.max_requeues": (CPU, ["launcher.max_requeues=1"], "cpu"),
    "launcher.signal_delay_s": (CPU, ["launcher.signal_delay_s=30"], "cpu"),
    "launcher.account": (CPU, ["launcher.account=acc"], "cpu"),
    "launcher.qos": (CPU, ["launcher.qos=q"], "cpu"),
    "launcher.wait": (CPU, ["launcher=slurm", "launcher.wait=true"], "cpu"),
    "launcher.time_factor": (CPU, ["launcher.time_factor=3"], "cpu"),
    "launcher.time_min_minutes": (CPU, ["launcher.time_min_minutes=5"], "cpu"),
    "launcher.time_max_minutes": (CPU, ["launcher.time_max_minutes=600"], "cpu"),
    "launcher.time_growth": (CPU, ["launcher.time_growth=3"], "cpu"),
    "launcher.time_arrays": (CPU, ["launcher.time_arrays=max"], "cpu"),
    "dry_run": (CPU, ["dry_run=true"], "cpu"),
    "stage.cost_default_ms": (CPU, ["stage.cost_default_ms=5"], "cpu"),
    "results_dir": (CPU, ["results_dir=elsewhere"], "cpu"),
    "force": (CPU, ["force=true"], "cpu"),
    "remeasure": (CPU, ["remeasure=true"], "cpu"),
    "repeats": (CPU, ["repeats=3"], "cpu"),
    "trace": (CPU, ["trace=true"], "cpu"),
    "kernels": (CPU, ["kernels=true"], "cpu"),
    # the training step's keys are hashed where the direction is not forward (tests/test_train_step.py: a
    # forward point's hash does not move with them)
    "train.loss": ([*CPU, "direction=train_step"], ["train.loss=mse"], "cpu"),
    "train.optimizer": ([*CPU, "direction=train_step"], ["train.optimizer=adam"], "cpu"),
    "train.lr": ([*CPU, "direction=train_step"], ["train.lr=0.5"], "cpu"),
    "train.momentum": ([*CPU, "direction=train_step"], ["train.momentum=0"], "cpu"),
    "train.input_grad": ([*CPU, "direction=backward_data"], ["train.input_grad=true"], "cpu"),
    "train.amp": ([*CPU, "direction=train_step"], ["train.amp=true"], "cpu"),
    "train.deterministic": ([*CPU, "direction=train_step"], ["train.deterministic=true"], "cpu"),
    "train.check_determinism": ([*CPU, "direction=backward_filter"], ["train.check_determinism=true"], "cpu"),
    "train.model_mode": ([*CPU, "direction=train_step"], ["train.model_mode=train"], "cpu"),
}
# Keys whose probe needs files; their tests: the plan's choices enter the hash (tests/test_plan.py), a model
# file's identity and input channels (tests/test_user_models.py), references stay out (tests/test_references.py).
ELSEWHERE = {"plan", "model.input_channels", "references", "layout", "l2", "direction"}  # the last three:
# tests/test_point_axes.py and tests/test_train_step.py
POINT_PROBES = {
    "stage.name": "stage=quick",
    "model.name": "model=vgg16",
    "algo.name": "algo=gemm",
    "gpu.name": "gpu=h100",
    "batch_size": "batch_size=[1,8]",
    "dtype": "dtype=float16",
    "stage.sizes": "stage.sizes=[64]",
}


def test_every_key_has_a_probe():
    probed = {*PROBES, *ELSEWHERE, *POINT_PROBES, "stage.size_range", "model.path", "model.factory"}  # the last
    # three: other spellings of the sizes and the model (tests/test_config.py, tests/test_user_models.py)
    missing = [k.name for k in keys.KEYS if k.name not in probed]
    assert not missing, f"add a probe for {missing}"


@pytest.mark.parametrize("name", sorted(PROBES))
def test_the_config_hash_follows_the_registry(tmp_path: Path, name: str):
    base, changed, device = PROBES[name]
    before, after = (device.split("|") * 2)[:2]
    a = make_spec(tmp_path, "results_dir=r", *base).resolved_for(before)
    b = make_spec(tmp_path, "results_dir=r", *base, *changed).resolved_for(after)
    hashed = keys.lookup(name).role in (Role.SETTING, Role.HASHED)
    assert (a.config_hash() != b.config_hash()) is hashed, (name, keys.lookup(name).role)


@pytest.mark.parametrize("name", sorted(POINT_PROBES))
def test_point_key_parts_change_the_partition_or_the_points(tmp_path: Path, name: str):
    a = make_spec(tmp_path, "gpu=local", "device=cuda")
    b = make_spec(tmp_path, "gpu=local", "device=cuda", POINT_PROBES[name])
    assert keys.lookup(name).role is Role.POINT
    assert (a.partition(), runner.job_points(a)) != (b.partition(), runner.job_points(b))


@pytest.mark.parametrize(
    ("overrides", "device", "earlier"),
    [
        ([], "cpu", "2cd67373e0eeac28"),
        (["stage=quick"], "cpu", "e0b958e03c1d232b"),
        (["device=cuda"], "cuda", "b4a429244e4a1f90"),
        (["gpu=h100", "stage=full", "algo=gemm", "math=fma"], "cuda", "81f892163e4f55cb"),
        (["graph=false"], "cpu", "2cd67373e0eeac28"),
    ],
)
def test_earlier_configs_keep_their_hash(tmp_path: Path, overrides: list[str], device: str, earlier: str):
    """Hashes as the harness wrote them before device, cpu_threads and cpus_per_task entered it: a rerun of
    these configs skips what they measured."""
    assert make_spec(tmp_path, "results_dir=results", *overrides).resolved_for(device).config_hash() == earlier


def test_cpu_and_cuda_hash_apart_whatever_graph_says(tmp_path: Path):
    for graph in ("graph=false", "graph=auto"):
        cpu = make_spec(tmp_path, "device=cpu", graph).resolved_for("cpu")
        cuda = make_spec(tmp_path, "device=cuda", graph).resolved_for("cuda")
        assert cpu.config_hash() != cuda.config_hash(), graph
    auto = make_spec(tmp_path, "device=auto").resolved_for("cuda")
    assert (
        auto.device == "cuda"
        and auto.config_hash() == make_spec(tmp_path, "device=cuda").resolved_for("cuda").config_hash()
    )


@pytest.mark.parametrize("value", ["0", "-2", "many", "1.5"])
def test_cpu_threads_refuses_what_is_not_a_count(tmp_path: Path, value: str):
    with pytest.raises(ConfigError, match="cpu_threads=.* is not valid; valid choices: auto, or a positive integer"):
        make_spec(tmp_path, f"cpu_threads={value}")


def test_a_job_sets_its_cpu_threads_records_them_and_puts_them_back(tmp_path: Path):
    before = torch.get_num_threads()
    auto = runner.run(make_spec(tmp_path, *FAST, f"results_dir={tmp_path / 'a'}"))
    one = runner.run(make_spec(tmp_path, *FAST, f"results_dir={tmp_path / 'b'}", "cpu_threads=1"))
    assert [p["cpu_threads"] for p in auto.points] == [before] and [p["cpu_threads"] for p in one.points] == [1]
    assert torch.get_num_threads() == before
    assert read(tmp_path / "b")["cpu_threads"].tolist() == [1]
