"""The config groups and their validation (in-process, through Hydra's compose API)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.config.spec import group_choices, resolve_sizes
from harness.errors import ConfigError
from harness.models import check_input_sizes, min_input_size
from tests.helpers import compose_config, make_spec


def test_groups_hold_what_the_issue_asks_for():
    assert set(group_choices("stage")) >= {"sanity", "quick", "full"}
    assert set(group_choices("model")) >= {
        "vgg16", "densenet121", "resnet152", "googlenet", "alexnet", "resnet50", "resnet18", "mobilenet_v2"
    }
    assert set(group_choices("algo")) == {
        "direct", "gemm", "implicit_gemm", "implicit_precomp_gemm", "fft", "fft_tiling", "winograd",
        "winograd_nonfused", "guess", "torch",
    }
    assert set(group_choices("gpu")) >= {"l40s", "h100", "v100", "local"}


def test_default_is_sanity_resnet18_torch_local(tmp_path: Path):
    spec = make_spec(tmp_path)
    assert (spec.stage.name, spec.model.name, spec.algo, spec.gpu.name) == ("sanity", "resnet18", "torch", "local")
    assert 224 in spec.stage.sizes and min(spec.stage.sizes) < 224
    assert spec.batch_sizes == (1,) and spec.dtype == "float32"


def test_stage_sizes(tmp_path: Path):
    quick = make_spec(tmp_path, "stage=quick").stage.sizes
    assert quick == (224, 256, 288, 320, 352, 384, 416, 448, 480, 512)
    full = make_spec(tmp_path, "stage=full").stage.sizes
    assert len(full) == 100 and full[0] == 224 and full[-1] == 512
    assert make_spec(tmp_path, "stage=quick", "stage.size_range.num=3").stage.sizes == (224, 368, 512)
    assert make_spec(tmp_path, "stage=quick", "stage.size_range=null", "stage.sizes=[300,250]").stage.sizes == (250, 300)


@pytest.mark.parametrize(
    ("sizes", "rng", "message"),
    [
        ([], None, "empty"),
        ([224, 0], None, "input size 0"),
        ([1.5], None, "not an integer"),
        (None, None, "exactly one"),
        ([224], {"start": 1, "stop": 2, "num": 2}, "exactly one"),
        (None, {"start": 1, "stop": 2}, "start, stop, num"),
        (None, {"start": 5, "stop": 2, "num": 2}, "stop >= start"),
    ],
)
def test_bad_sizes(sizes, rng, message):
    with pytest.raises(ConfigError, match=message):
        resolve_sizes(sizes, rng)


def test_batch_size_axis_and_config_hash(tmp_path: Path):
    a = make_spec(tmp_path, "batch_size=[8,1,8]")
    assert a.batch_sizes == (1, 8)
    b = make_spec(tmp_path / "elsewhere", "batch_size=[1,8]")
    assert a.config_hash() == b.config_hash()  # where results go does not change what they mean
    assert a.config_hash() != make_spec(tmp_path, "batch_size=[1,8]", "seed=1").config_hash()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("stage.max_iters=2", "max_iters=2 is below"),
        ("stage.target_ci_rel=0", "target_ci_rel"),
        ("device=tpu", "auto, cpu, cuda"),
        ("batch_size=[1,-2]", "batch_size"),
        ("seed=abc", "seed"),
    ],
)
def test_bad_values_name_themselves(tmp_path: Path, override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        make_spec(tmp_path, override)


def test_every_gpu_type_has_slurm_options_and_spec_numbers():
    for name in group_choices("gpu"):
        gpu = compose_config(f"gpu={name}")["gpu"]
        if name == "local":
            continue
        assert gpu["slurm"]["partition"] and gpu["slurm"]["gres"] == "gpu:1" and gpu["slurm"]["constraint"]
        assert gpu["spec"]["fp32_tflops"] > 0 and gpu["spec"]["mem_bw_gbs"] > 0 and gpu["nvml_name"]


def test_every_stage_has_slurm_resources():
    for name in group_choices("stage"):
        slurm = compose_config(f"stage={name}")["stage"]["slurm"]
        assert slurm["timeout_min"] > 0 and slurm["mem_gb"] > 0 and slurm["cpus_per_task"] > 0


@pytest.mark.parametrize(
    ("model", "minimum"),
    [("vgg16", 32), ("alexnet", 63), ("googlenet", 15), ("densenet121", 29), ("resnet50", 1), ("inception_v3", 75)],
)
def test_minimum_input_size_comes_from_the_architecture(model: str, minimum: int):
    assert min_input_size(model) == minimum
    check_input_sizes(model, {}, (minimum, 224))
    with pytest.raises(ConfigError, match=f"minimum input size of {model}, which is {minimum}"):
        check_input_sizes(model, {}, (minimum - 1, 224))


def test_every_configured_model_accepts_every_stage_size():
    for model in group_choices("model"):
        kwargs = compose_config(f"model={model}")["model"]["kwargs"]
        for stage in group_choices("stage"):
            sizes = make_spec(Path("unused"), f"stage={stage}").stage.sizes
            check_input_sizes(model, kwargs, sizes)
