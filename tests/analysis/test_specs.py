"""A GPU type's datasheet for the analysis: first from the runs' manifests (read by harness.results.manifest:
the detected SKU's peaks, or an older run's config), then from conf/gpu's overrides or the one SKU of
conf/skus.yaml a type can be; None where none is known."""

from __future__ import annotations

import logging

from analysis.tree.specs import gpu_specs
from harness.config.skus import load_skus
from harness.results.layout import Partition, run_file
from harness.results.manifest import RunManifest, write_manifest


def _run(root, gpu: str, spec, run_id: str = "20261205T000000-aaaa", hardware=None) -> None:
    leaf = Partition("quick", gpu, "resnet18", "gemm").path(root)
    leaf.mkdir(parents=True)
    manifest = RunManifest(run_id, config={"gpu": {"name": gpu, "spec": spec}}, hardware=hardware)
    write_manifest(manifest, leaf / run_file(run_id))


def test_the_peaks_a_run_used_win_over_its_config(tmp_path):
    """A run that recorded its detected SKU's peaks: those, not the gpu type's (all-null) spec."""
    sxm = {k: v for k, v in next(s for s in load_skus() if s.key == "h100_sxm").peaks.items()}
    nulls = dict.fromkeys(sxm)
    _run(tmp_path, "h100", nulls, hardware={"inventory": None, "peaks": {"spec": sxm, "source": "datasheet"}})
    assert gpu_specs(tmp_path, ["h100"]) == {"h100": sxm}
    _run(tmp_path / "cpu", "local", nulls, hardware={"inventory": None, "peaks": {"spec": None, "source": "unknown"}})
    assert gpu_specs(tmp_path / "cpu", ["local"]) == {"local": None}


def test_a_run_s_datasheet_wins_over_conf(tmp_path):
    _run(tmp_path, "h100", {"fp32_tflops": 1.0, "mem_bw_gbs": 2.0})
    specs = gpu_specs(tmp_path, ["h100"])
    assert specs["h100"]["fp32_tflops"] == 1.0 and specs["h100"]["mem_bw_gbs"] == 2.0
    assert specs["h100"]["tdp_w"] is None  # what the run did not record is unknown, not conf's


def test_a_run_without_a_datasheet_says_none(tmp_path):
    _run(tmp_path, "h100", None)
    assert gpu_specs(tmp_path, ["h100"]) == {"h100": None}


def test_without_runs_a_type_of_one_sku_has_its_peaks_and_others_none(tmp_path):
    specs = gpu_specs(tmp_path, ["l40s", "h100", "h200", "local"])
    assert specs["l40s"]["fp16_tflops"] == 362.05 and specs["l40s"]["mem_bw_gbs"] == 864.0
    assert specs["h100"] is None and specs["h200"] is None  # SXM, NVL or PCIe: not guessed before a run
    assert specs["local"] is None


def test_without_runs_conf_gpu_overrides_answer(tmp_path):
    conf = tmp_path / "conf"
    (conf / "gpu").mkdir(parents=True)
    (conf / "gpu" / "x1.yaml").write_text(
        "nvml_name: X1\nspec: {fp32_tflops: 5.0, mem_bw_gbs: 50.0, tf32_tflops: null}\n"
    )
    (conf / "skus.yaml").write_text("{}\n")
    (x1,) = gpu_specs(tmp_path / "results", ["x1"], conf_dir=conf).values()
    assert (x1["fp32_tflops"], x1["mem_bw_gbs"], x1["tf32_tflops"]) == (5.0, 50.0, None)


def test_a_broken_conf_file_is_logged_and_unknown(tmp_path, caplog):
    conf = tmp_path / "conf"
    (conf / "gpu").mkdir(parents=True)
    (conf / "gpu" / "x1.yaml").write_text("spec: [unclosed\n")
    with caplog.at_level(logging.WARNING):
        assert gpu_specs(tmp_path / "results", ["x1"], conf_dir=conf) == {"x1": None}
    assert "x1.yaml is not valid YAML" in caplog.text
