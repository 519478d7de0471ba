"""The config groups and their validation (in-process, through Hydra's compose API)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hydra.errors import HydraException

from harness.config import sizes as sizes_module
from harness.config.groups import group_choices
from harness.config.sizes import resolve_sizes
from harness.errors import ConfigError
from harness.launch.submit import make_tasks
from harness.models import check_input_sizes, min_input_size
from tests.helpers import compose_config, make_spec


def test_groups_hold_what_the_issue_asks_for():
    assert set(group_choices("stage")) >= {"sanity", "quick", "full"}
    assert set(group_choices("model")) >= {
        "vgg16",
        "densenet121",
        "resnet152",
        "googlenet",
        "alexnet",
        "resnet50",
        "resnet18",
        "mobilenet_v2",
    }
    assert set(group_choices("algo")) == {
        "direct",
        "gemm",
        "implicit_gemm",
        "implicit_precomp_gemm",
        "fft",
        "fft_tiling",
        "winograd",
        "winograd_nonfused",
        "guess",
        "find",
        "torch",
        "per_layer",
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
    assert make_spec(tmp_path, "stage=sanity").stage.sizes == (96, 224)


@pytest.mark.parametrize(
    ("overrides", "sizes"),
    [
        (["stage=quick", "stage.sizes=[224,300]"], (224, 300)),  # a list replaces the stage's range, nothing else
        (["stage=quick", "stage.sizes={start:224,stop:512,num:3}"], (224, 368, 512)),
        (["stage=quick", "stage.sizes=256"], (256,)),
        (["stage=sanity", "stage.sizes={start:224,stop:512,num:3}"], (224, 368, 512)),  # a range replaces a list
        (["stage.sizes=[300,250,300]"], (250, 300)),  # sorted, without repeats
        (["stage.sizes={start:224,stop:230,num:4}"], (224, 226, 228, 230)),  # rounded to whole pixels
        (["stage.sizes={start:224,stop:224,num:3}"], (224,)),
        (["stage.sizes='96,224'"], (96, 224)),  # the string forms, as in the stage yaml files
        (["stage.sizes='[ 96, 224 ]'"], (96, 224)),
        (["stage.sizes='224'"], (224,)),
        (["stage.sizes='{start: 224, stop: 512, num: 3}'"], (224, 368, 512)),
        (["stage=quick", "stage.sizes={start:224,stop:512,num:3}", "stage.sizes.num=2"], (224, 512)),
    ],
)
def test_each_form_of_stage_sizes(tmp_path: Path, caplog, overrides: list[str], sizes: tuple[int, ...]):
    with caplog.at_level(logging.WARNING):
        assert make_spec(tmp_path, *overrides).stage.sizes == sizes
    assert "deprecated" not in caplog.text


@pytest.fixture
def fresh_deprecations(monkeypatch):
    """Each deprecation is logged once per process; a test sees it afresh."""
    monkeypatch.setattr(sizes_module, "_logged", set())


@pytest.mark.parametrize(
    "overrides",
    [
        ["stage=quick", "stage.size_range={start:224,stop:512,num:3}"],
        ["stage=quick", "stage.sizes=null", "stage.size_range={start:224,stop:512,num:3}"],
        ["stage=sanity", "stage.size_range={start:224,stop:512,num:3}"],  # wins over the stage's list
        ["stage=quick", "stage.sizes=[300]", "stage.size_range={start:224,stop:512,num:3}"],  # typed, it wins
    ],
)
def test_old_size_range_still_works_and_says_what_to_write(tmp_path, caplog, fresh_deprecations, overrides):
    with caplog.at_level(logging.WARNING, logger="harness.config.spec"):
        assert make_spec(tmp_path, *overrides).stage.sizes == (224, 368, 512)
    [record] = [r for r in caplog.records if "deprecated" in r.getMessage()]
    assert record.levelno == logging.WARNING
    assert "stage.size_range is deprecated" in record.getMessage()
    assert "stage.sizes={start:224,stop:512,num:3}" in record.getMessage()


def test_old_size_range_null_is_accepted_silently(tmp_path, caplog, fresh_deprecations):
    with caplog.at_level(logging.WARNING):
        assert make_spec(tmp_path, "stage=quick", "stage.size_range=null", "stage.sizes=[300,250]").stage.sizes == (
            250,
            300,
        )
        assert make_spec(tmp_path, "stage=quick", "stage.size_range=null").stage.sizes[:2] == (224, 256)
    assert "deprecated" not in caplog.text


def test_a_deprecation_is_logged_once_per_process(tmp_path, caplog, fresh_deprecations):
    with caplog.at_level(logging.WARNING, logger="harness.config.spec"):
        for _ in range(3):  # e.g. the jobs of a sweep
            make_spec(tmp_path, "stage=quick", "stage.size_range={start:224,stop:512,num:3}")
    assert sum("deprecated" in r.getMessage() for r in caplog.records) == 1


def test_old_field_of_the_range_is_refused_by_hydra(tmp_path):
    with pytest.raises(HydraException, match="stage.size_range.num"):
        compose_config("stage=quick", "stage.size_range.num=3")  # README: write stage.sizes={start:224,stop:512,num:3}


def test_config_hash_does_not_depend_on_how_sizes_are_spelled(tmp_path: Path, fresh_deprecations):
    spellings = [
        ["stage=quick", "stage.sizes={start:224,stop:512,num:3}"],
        ["stage=quick", "stage.sizes=[512,224,368]"],
        ["stage=quick", "stage.sizes='224,368,512'"],
        ["stage=quick", "stage.size_range={start:224,stop:512,num:3}"],
        ["stage=quick", "stage.sizes=null", "stage.size_range={start:224,stop:512,num:3}"],
        ["stage=quick", "stage.size_range=null", "stage.sizes=[224,368,512]"],
    ]
    specs = [make_spec(tmp_path, *s) for s in spellings]
    assert {s.stage.sizes for s in specs} == {(224, 368, 512)}
    assert len({s.config_hash() for s in specs}) == 1
    assert {s.measurement_config()["stage"]["sizes"] for s in specs} == {None}


@pytest.mark.parametrize(
    ("sizes", "rng", "message"),
    [
        ([], None, "stage.sizes is empty"),
        ("[]", None, "stage.sizes is empty"),
        ([224, 0], None, "input size 0"),
        ("-5", None, "input size -5"),
        ([1.5], None, "not an integer"),
        (None, None, "stage.sizes is null"),
        (True, None, "stage.sizes=True is not valid"),
        (
            "224:512:10",
            None,
            r"'224:512:10' is not valid.*stage.sizes=\[224,256\].*stage.sizes=\{start:224,stop:512,num:10\}",
        ),
        ("96, 22a", None, "'96, 22a' is not valid"),
        ("96,,224", None, "is not valid"),
        ("{start: 1, stop: 2}", None, "start, stop, num"),
        ("{start: 1, start: 1, stop: 2, num: 3}", None, "is not valid"),
        ({"start": 1, "stop": 2}, None, "start, stop, num"),
        ({"start": 1, "stop": "x", "num": 2}, None, "stage.sizes.stop='x' is not an integer"),
        ({"start": 5, "stop": 2, "num": 2}, None, "stop >= start"),
        ({"start": 2, "stop": 5, "num": 0}, None, "num >= 1"),
        (None, {"start": 1, "stop": 2}, "stage.size_range.*start, stop, num"),
        (None, [1, 2], "stage.size_range"),
        (None, {"start": 5, "stop": 2, "num": 2}, "stage.size_range=.*stop >= start"),
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
        ("graph=sometimes", "graph='sometimes' is not valid; valid choices: auto, true, false"),
    ],
)
def test_bad_values_name_themselves(tmp_path: Path, override: str, message: str):
    with pytest.raises(ConfigError, match=message):
        make_spec(tmp_path, override)


def test_every_gpu_type_has_slurm_options_and_skus_with_peaks():
    """Each named type's SLURM options, and its peaks by detected SKU: every field of its spec null (an
    override only where a user sets one) and at least one SKU of conf/skus.yaml its NVML name can be."""
    from harness.config.skus import PEAK_FIELDS, load_skus

    skus = load_skus()
    for name in group_choices("gpu"):
        gpu = compose_config(f"gpu={name}")["gpu"]
        assert gpu["spec"] == dict.fromkeys(PEAK_FIELDS)
        if name == "local":
            continue
        assert gpu["slurm"]["partition"] and gpu["slurm"]["gres"] == "gpu:1" and gpu["slurm"]["constraint"]
        assert gpu["nvml_name"] and any(gpu["nvml_name"] in n for s in skus for n in s.nvml_names)


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


def test_graph_auto_is_decided_by_the_device_that_measures(tmp_path: Path):
    auto = make_spec(tmp_path)
    assert auto.graph is None  # the default, undecided on a login node
    gpu, cpu = auto.resolved_for("cuda"), auto.resolved_for("cpu")
    assert (gpu.graph, cpu.graph) == (True, False)
    assert gpu.config_hash() == make_spec(tmp_path, "graph=true").config_hash()  # auto measured as a graph IS a graph
    assert cpu.config_hash() == make_spec(tmp_path, "graph=false").config_hash()
    explicit = make_spec(tmp_path, "graph=false")
    assert explicit.resolved_for("cpu") is explicit and explicit.resolved_for("cuda").graph is False  # a choice kept
    assert (auto.device, gpu.device, cpu.device) == ("cpu", "cuda", "cpu")  # device=auto is decided there too


@pytest.mark.parametrize(
    "override, key",
    [("remeasure=no", "remeasure"), ("trace=yes", "trace"), ("stage.verify_every_point=0", "stage.verify_every_point")],
)
def test_switches_are_true_or_false_never_python_truth(tmp_path: Path, override: str, key: str):
    """remeasure=no once measured every point again (the text 'no' is true in Python): now refused by name."""
    with pytest.raises(ConfigError, match=f"{key}=.* is not valid; valid choices: true, false"):
        make_spec(tmp_path, override)
    with pytest.raises(ConfigError, match="force='yes' is not valid; valid choices: true, false"):
        make_tasks(compose_config(f"results_dir={tmp_path}", "device=cpu", "force=yes"))
