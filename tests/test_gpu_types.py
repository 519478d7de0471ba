"""conf/gpu has one reader (harness.config.gpus): a run's composed GPU type and the file read directly agree."""

from __future__ import annotations

import pytest

from harness.config.gpus import GpuType, gpu_type, load_gpu_types
from harness.config.groups import group_choices
from harness.config.spec import GpuSpec, run_spec_from_dict
from harness.errors import ConfigError
from tests.helpers import compose_config


def test_every_gpu_file_is_a_gpu_type():
    types = load_gpu_types()
    assert sorted(types) == sorted(group_choices("gpu"))
    assert all(isinstance(t, GpuType) and t.name == name for name, t in types.items())
    assert types["h200"].nvml_name == "H200"
    assert types["h200"].slurm["constraint"] == "gpuh200"
    assert all(v is None for t in types.values() for v in t.spec.values())  # peaks: by the detected SKU


@pytest.mark.parametrize("name", ["h100", "h200", "l40s", "v100", "local"])
def test_a_run_sees_the_gpu_type_its_file_declares(name):
    spec = run_spec_from_dict(compose_config(f"gpu={name}", "device=auto"))
    assert spec.gpu == load_gpu_types()[name]


def test_old_name_is_the_same_class():
    assert GpuSpec is GpuType


def test_missing_file_is_none_and_broken_files_are_named(tmp_path):
    (tmp_path / "gpu").mkdir()
    assert gpu_type("nope", tmp_path) is None
    (tmp_path / "gpu" / "bad.yaml").write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml is not valid YAML"):
        gpu_type("bad", tmp_path)
    (tmp_path / "gpu" / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match=r"list\.yaml is not a mapping"):
        gpu_type("list", tmp_path)
    (tmp_path / "gpu" / "exec.yaml").write_text("container_exec: '  '\n")
    with pytest.raises(ConfigError, match=r"exec\.yaml: gpu\.container_exec='  ' is not valid"):
        gpu_type("exec", tmp_path)
    with pytest.raises(ConfigError, match=r"bad\.yaml"):  # one broken file stops the whole listing
        load_gpu_types(tmp_path)


def test_unknown_gpu_names_the_choices():
    from harness.config.gpus import gpu_type_from_dict

    with pytest.raises(ConfigError, match=r"unknown gpu 'a100'; valid choices: h100, h200"):
        gpu_type_from_dict({"name": "a100"}, group_choices("gpu"))
