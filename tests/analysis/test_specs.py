"""A GPU type's datasheet for the analysis: first from the runs' manifests (read by harness.results.manifest),
then from conf/gpu (read by harness.config.gpus); None where neither knows."""

from __future__ import annotations

import logging

from analysis.tree.specs import gpu_specs
from harness.config.gpus import gpu_type
from harness.results.layout import Partition, run_file
from harness.results.manifest import RunManifest, write_manifest


def _run(root, gpu: str, spec, run_id: str = "20261205T000000-aaaa") -> None:
    leaf = Partition("quick", gpu, "resnet18", "gemm").path(root)
    leaf.mkdir(parents=True)
    write_manifest(RunManifest(run_id, config={"gpu": {"name": gpu, "spec": spec}}), leaf / run_file(run_id))


def test_a_run_s_datasheet_wins_over_conf(tmp_path):
    _run(tmp_path, "h100", {"fp32_tflops": 1.0, "mem_bw_gbs": 2.0})
    specs = gpu_specs(tmp_path, ["h100"])
    assert specs["h100"]["fp32_tflops"] == 1.0 and specs["h100"]["mem_bw_gbs"] == 2.0
    assert specs["h100"]["tdp_w"] is None  # what the run did not record is unknown, not conf's


def test_a_run_without_a_datasheet_says_none(tmp_path):
    _run(tmp_path, "h100", None)
    assert gpu_specs(tmp_path, ["h100"]) == {"h100": None}


def test_without_runs_conf_gpu_answers(tmp_path):
    specs = gpu_specs(tmp_path, ["h200", "local"])
    assert specs["h200"]["mem_bw_gbs"] == gpu_type("h200").spec["mem_bw_gbs"] == 4800.0
    assert specs["local"] is None


def test_a_broken_conf_file_is_logged_and_unknown(tmp_path, caplog):
    conf = tmp_path / "conf"
    (conf / "gpu").mkdir(parents=True)
    (conf / "gpu" / "x1.yaml").write_text("spec: [unclosed\n")
    with caplog.at_level(logging.WARNING):
        assert gpu_specs(tmp_path / "results", ["x1"], conf_dir=conf) == {"x1": None}
    assert "x1.yaml is not valid YAML" in caplog.text
