"""The sweep's fast composition gives exactly what Hydra composes, and falls back to Hydra otherwise."""

from __future__ import annotations

import pyarrow.dataset as ds
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import OmegaConf, open_dict

from harness.config.compose import FastComposer
from harness.config.spec import CONF_DIR
from tests.conftest import FAST, run_cli


def _hydra(overrides: list[str]) -> dict:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.fixture(scope="module")
def composer() -> FastComposer:
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        base = compose(config_name="config")
    with open_dict(base):
        base.pop("hydra", None)
    return FastComposer(base, CONF_DIR, _hydra)


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["model=vgg16", "algo=gemm", "gpu=l40s", "stage=quick"],
        ["stage=quick", "stage.sizes={start:224,stop:512,num:3}", "batch_size=[1,8]"],
        ["stage=quick", "stage.sizes=[224,300]"],  # the yaml's string replaced by a list ...
        ["stage=quick", "stage.sizes={start:224,stop:300,num:3}", "stage.sizes={num:2}"],  # a range merged into a range
        ["stage=sanity", "stage.sizes=224"],
        ["stage=quick", "stage.sizes={start:224,stop:512,num:3}", "stage.sizes.num=5"],
        ["stage.sizes=[32,48]", "gpu=h100", "gpu.slurm.partition=hopper", "model.name=regnet_y_400mf"],
        ["launcher=slurm", "launcher.wait=true", "tolerance.float32=1e-4", "stage.slurm.mem_gb=2"],
        [
            "model=googlenet",
            "model.kwargs.init_weights=false",
            "stage=full",
            "stage.size_range={start:224,stop:300,num:3}",
        ],
        ["stage.size_range={start:224,stop:300,num:3}", "stage.sizes=null"],  # the deprecated spellings
        ["stage=quick", "stage.size_range=null", "stage.sizes=[224,300]"],
        ["gpu=v100", "gpu=l40s"],  # the last choice wins
    ],
)
def test_fast_composition_equals_hydras(composer: FastComposer, overrides: list[str]):
    before = composer.fast
    assert composer.compose(overrides) == _hydra(overrides)
    assert composer.fast == before + 1


@pytest.mark.parametrize("overrides", [["+gpu.slurm.reservation=r1"], ["~stage.slurm"], ["hydra.job.name=x"]])
def test_other_overrides_go_to_hydra(composer: FastComposer, overrides: list[str]):
    before = composer.slow
    assert composer.compose(overrides) == _hydra(overrides)
    assert composer.slow == before + 1


@pytest.mark.parametrize(
    "overrides",
    [
        ["model=nosuchnet"],
        ["nosuchkey=1"],
        ["stage.sizes=[224,300]", "stage.sizes={start:224,stop:300,num:3}"],  # Hydra cannot merge a mapping into a list
        ["stage=quick", "stage.sizes={start:224,stop:300,num:3}", "stage.sizes=[224]"],  # nor a list into a mapping
        ["stage=quick", "stage.size_range.num=3"],  # the old range's field: the stage's size_range is null
    ],
)
def test_bad_overrides_get_hydras_errors(composer: FastComposer, overrides: list[str]):
    with pytest.raises(HydraException):
        composer.compose(overrides)


def test_a_sweep_over_sizes_in_both_forms(tmp_path):
    """Each job of the sweep gets one form of stage.sizes over the stage yaml's string."""
    sweep = "stage.sizes=[32],{start:32,stop:40,num:2}"
    proc = run_cli(
        "-m", *FAST[1:], sweep, "remeasure=true", "launcher=local", f"results_dir={tmp_path / 'r'}", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert "sweep of 2 jobs: 2 here, 0 on SLURM" in proc.stdout
    sizes = [
        r["input_size"]
        for r in ds.dataset(tmp_path / "r", partitioning="hive", ignore_prefixes=["layers", "run"])
        .to_table()
        .to_pylist()
    ]
    assert sorted(sizes) == [32, 32, 40]


def test_multirun_goes_through_the_harness_launcher(tmp_path):
    proc = run_cli(
        "-m",
        "model.name=resnet18,squeezenet1_0",
        *FAST,
        "launcher=local",
        f"results_dir={tmp_path / 'r'}",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert (
        "sweep of 2 jobs: 2 here, 0 on SLURM" in proc.stdout
    )  # printed by harness.launch.dispatch, called by our launcher
    assert "Launching 2 jobs locally" not in proc.stdout + proc.stderr  # Hydra's basic launcher was not used
