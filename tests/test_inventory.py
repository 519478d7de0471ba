"""The device a job measured on: the NVML inventory (a fake NVML at the border), the SKU table, the peaks the
roofline uses, the doctor's lines; the real NVML on a GPU (marked gpu)."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pynvml
import pytest
import torch

from harness.config.skus import PEAK_FIELDS, load_skus, match_sku, resolve_peaks
from harness.doctor import OK, WARNING, inventory_checks
from harness.errors import ConfigError
from harness.measure.device import DeviceInfo
from harness.measure.hardware import Hardware, hardware_of
from harness.measure.inventory import read_inventory
from harness.measure.point import PointMeasurer
from harness.results.read import read
from harness.results.schema import POINTS
from harness.run.runner import run
from tests.conftest import FAST
from tests.fake_nvml import FakeNvml, FakeNvmlDevice
from tests.helpers import make_spec

GIB = 1024**3
SKUS = load_skus()


def test_the_fake_speaks_only_the_installed_pynvml():
    """Every NVML call and constant the fakes offer (so every one the reader can use through them) exists in
    pynvml with the same value: the reader cannot drift to a name the real module lacks."""
    names = {n for cls in (FakeNvml, FakeNvmlDevice) for n in vars(cls) if n.startswith(("nvml", "NVML"))}
    assert {"nvmlDeviceGetBoardPartNumber", "nvmlDeviceGetComputeRunningProcesses", "NVML_CLOCK_MEM"} <= names
    for name in sorted(names):
        assert hasattr(pynvml, name), name
        if name.startswith("NVML_"):
            assert getattr(pynvml, name) == getattr(FakeNvmlDevice, name), name


def test_the_inventory_of_a_device():
    nvml = FakeNvmlDevice(
        {"compute_processes": [(4242, 512 * 1024**2), (77, 2 * GIB)], "graphics_processes": [(9, None)]}
    )
    inv = read_inventory(nvml, "handle", own_pid=4242)
    assert inv.nvml_name == "NVIDIA H100 80GB HBM3" and inv.board_part_number == "692-2G520-0200-000"
    assert inv.memory_bytes == 81559 * 1024**2 and inv.uuid.startswith("GPU-")
    assert (inv.power_limit_w, inv.power_limit_default_w) == (700.0, 700.0)
    assert (inv.ecc, inv.persistence, inv.mig, inv.compute_mode) == (True, True, False, "default")
    assert (inv.app_sm_clock_mhz, inv.app_mem_clock_mhz, inv.max_sm_clock_mhz) == (1980, 2619, 1980)
    assert inv.clocks_locked is False
    assert inv.other_processes == "9 (? MiB), 77 (2048 MiB)"  # not this process (4242)
    columns = inv.columns()
    assert set(columns) <= set(POINTS.names) and columns["gpu_power_limit_w"] == 700.0


def test_application_clocks_set_away_from_defaults_are_locked():
    nvml = FakeNvmlDevice({"app_clocks": {1: 1410, 2: 2619}})
    assert read_inventory(nvml, "handle").clocks_locked is True
    nvml = FakeNvmlDevice({"app_clocks": None, "default_app_clocks": None})
    assert read_inventory(nvml, "handle").clocks_locked is None  # not known: not claimed either way


FIELDS = [k for k in FakeNvmlDevice.H100_SXM]


@pytest.mark.parametrize("refused", FIELDS)
def test_a_query_nvml_refuses_is_null_never_a_crash(refused: str):
    inv = read_inventory(FakeNvmlDevice({refused: None}), "handle")
    nulls = {f.name for f in dataclasses.fields(inv) if getattr(inv, f.name) is None} - {"sm_count"}
    expected = {
        "name": {"nvml_name"},
        "memory_bytes": {"memory_bytes"},
        "power_limit_mw": {"power_limit_w"},
        "power_limit_default_mw": {"power_limit_default_w"},
        "app_clocks": {"app_sm_clock_mhz", "app_mem_clock_mhz"},
        "default_app_clocks": {"default_app_sm_clock_mhz", "default_app_mem_clock_mhz"},
        "max_clocks": {"max_sm_clock_mhz", "max_mem_clock_mhz"},
        "compute_processes": {"other_processes"},
        "graphics_processes": {"other_processes"},
        "ecc": {"ecc"},
        "mig": {"mig"},
        "compute_mode": {"compute_mode"},
    }.get(refused, {refused})
    assert nulls == expected


def test_an_older_pynvml_without_a_call_gives_null():
    class Older(FakeNvmlDevice):
        nvmlDeviceGetBoardPartNumber = None  # not in this version

    inv = read_inventory(Older(), "handle")
    assert inv.board_part_number is None and inv.nvml_name == "NVIDIA H100 80GB HBM3"


# -- the SKU table -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "gib", "key"),
    [
        ("NVIDIA H100 80GB HBM3", 79.6, "h100_sxm"),
        ("NVIDIA H100 NVL", 93.6, "h100_nvl"),
        ("NVIDIA H100 PCIe", 79.6, "h100_pcie"),
        ("NVIDIA H200", 140.4, "h200_sxm"),
        ("NVIDIA H200 NVL", 140.4, "h200_nvl"),
        ("NVIDIA L40S", 44.4, "l40s"),
        ("Tesla V100-SXM2-32GB", 31.7, "v100_sxm2"),
        ("Tesla V100-PCIE-16GB", 15.8, "v100_pcie"),
        ("Tesla V100S-PCIE-32GB", 31.7, "v100s_pcie"),
        ("NVIDIA H100 80GB HBM3", 93.6, None),  # the name of one board, the memory of another: not guessed
        ("NVIDIA GH200 480GB", 95.0, None),  # not in the table
        ("NVIDIA H100 80GB HBM3", None, "h100_sxm"),  # memory not known: the name decides
    ],
)
def test_a_device_matches_its_sku(name: str, gib: float | None, key: str | None):
    sku = match_sku(name, None if gib is None else int(gib * GIB), SKUS)
    assert (sku.key if sku else None) == key


def test_every_sku_is_cited_dense_and_one_board():
    for sku in SKUS:
        assert set(sku.peaks) == set(PEAK_FIELDS) and "datasheet" in sku.source.lower()
        assert sku.peaks["fp16_tflops"] > sku.peaks["fp32_tflops"]
    by_key = {s.key: s for s in SKUS}
    assert by_key["h100_sxm"].peaks["fp16_tflops"] == 989.5  # 1,979 with sparsity / 2
    assert by_key["h100_nvl"].peaks["mem_bw_gbs"] == 3900.0 and by_key["h200_sxm"].peaks["mem_bw_gbs"] == 4800.0
    assert by_key["v100_sxm2"].peaks["tf32_tflops"] is None  # Volta has no TF32


def test_a_broken_sku_entry_is_refused_by_name(tmp_path):
    (tmp_path / "skus.yaml").write_text(
        "x1:\n  name: X\n  nvml_names: ['X']\n  memory_gib: [1, 2]\n  source: s\n  peaks: {fp32_tflops: 1.0}\n"
    )
    with pytest.raises(ConfigError, match="x1.peaks must give exactly fp32_tflops"):
        load_skus(tmp_path)


def test_the_peaks_come_from_the_detected_sku_and_an_override_says_so():
    sxm = match_sku("NVIDIA H100 80GB HBM3", 80 * GIB, SKUS)
    peaks = resolve_peaks(sxm, dict.fromkeys(PEAK_FIELDS), "the device")
    assert (peaks.source, peaks.sku, peaks.spec) == ("datasheet", "h100_sxm", sxm.peaks)
    capped = resolve_peaks(sxm, {"fp16_tflops": 500.0, "mem_bw_gbs": None}, "the device")
    assert capped.source == "datasheet+config" and capped.spec["fp16_tflops"] == 500.0
    assert capped.spec["mem_bw_gbs"] == 3350.0 and "overrides fp16_tflops" in capped.why
    unknown = resolve_peaks(None, dict.fromkeys(PEAK_FIELDS), "NVIDIA GH200 480GB")
    assert (unknown.spec, unknown.source) == (None, "unknown") and "no known peaks for NVIDIA GH200" in unknown.why
    given = resolve_peaks(None, {"fp32_tflops": 60.0, "mem_bw_gbs": 4000.0}, "NVIDIA GH200 480GB")
    assert given.source == "config" and given.spec["fp32_tflops"] == 60.0 and given.spec["tf32_tflops"] is None


def test_the_hardware_of_a_device_uses_nvmls_name_and_memory():
    inv = read_inventory(FakeNvmlDevice({"name": "NVIDIA H100 NVL", "memory_bytes": 95830 * 1024**2}), "h")
    hw = hardware_of("NVIDIA H100 NVL", inv, 80 * GIB, None, SKUS)
    assert hw.peaks.sku == "h100_nvl" and hw.columns()["gpu_sku"] == "h100_nvl"
    assert hw.columns()["peaks_source"] == "datasheet" and hw.columns()["gpu_memory_bytes"] == 95830 * 1024**2
    no_nvml = hardware_of("NVIDIA H100 PCIe", None, int(79.6 * GIB), None, SKUS)  # torch's name and memory
    assert no_nvml.peaks.sku == "h100_pcie" and no_nvml.columns()["gpu_uuid"] is None
    assert hw.to_dict()["peaks"]["spec"]["fp32_tflops"] == 60.0


# -- the rows ----------------------------------------------------------------------------------------------
def test_a_cpu_run_says_its_peaks_are_unknown(tmp_path):
    run(make_spec(tmp_path, "model=resnet18", "algo=gemm", *FAST))
    (p,) = read(tmp_path).to_dict("records")
    assert p["peaks_source"] == "unknown" and pd.isna(p["gpu_sku"]) and pd.isna(p["roofline_bound"])
    assert pd.isna(p["peak_tflops"]) and pd.isna(p["achieved_fraction_of_peak"]) and pd.isna(p["gpu_uuid"])


def test_the_roofline_uses_the_detected_skus_peaks(tmp_path):
    """The measurer's roofline against the hardware it is given (a GPU's, here on the CPU's numbers): an H100
    SXM's FP32 peak, whatever the gpu type says."""
    spec = make_spec(tmp_path, "model=resnet18", "algo=gemm", *FAST)
    inv = read_inventory(FakeNvmlDevice(), "h")
    hw = hardware_of("NVIDIA H100 80GB HBM3", inv, None, spec.gpu.spec, SKUS)
    measurer = PointMeasurer(spec, DeviceInfo(torch.device("cpu"), "cpu"), hardware=hw)
    result = measurer.measure_point(32, 1)
    row = result.row({})
    assert (row["peak_tflops"], row["peak_mem_bw_gbs"]) == (67.0, 3350.0)  # FP32: no tensor math on the CPU
    assert row["roofline_bound"] in ("compute", "memory")
    assert row["achieved_fraction_of_peak"] == pytest.approx(row["achieved_tflops"] / 67.0)
    assert all(layer["roofline_bound"] in ("compute", "memory") for layer in result.layers)


# -- the doctor --------------------------------------------------------------------------------------------
def test_the_doctor_shows_the_inventory_and_warns_where_it_matters():
    inv = read_inventory(FakeNvmlDevice({"compute_processes": [(77, GIB)], "power_limit_mw": 500_000}), "h", 1)
    checks = {c.name: c for c in inventory_checks(hardware_of("x", inv, None, None, SKUS))}
    assert checks["gpu device"].found.startswith("NVIDIA H100 80GB HBM3, board 692-2G520-0200-000")
    assert checks["gpu other processes"].status == WARNING and "77 (1024 MiB)" in checks["gpu other processes"].found
    power = checks["gpu power limit"]
    assert power.status == WARNING and "500 W enforced (default 700 W)" in power.found
    assert checks["gpu sku and peaks"].status == OK and "h100_sxm" in checks["gpu sku and peaks"].found
    refused = read_inventory(FakeNvmlDevice({"name": "NVIDIA GH200 480GB", "memory_bytes": None}), "h", 1)
    checks = {c.name: c for c in inventory_checks(hardware_of("NVIDIA GH200 480GB", refused, None, None, SKUS))}
    assert checks["gpu sku and peaks"].status == WARNING and "conf/skus.yaml" in checks["gpu sku and peaks"].fix
    assert checks["gpu memory, SMs"].found == "memory unknown, SMs unknown"


def test_no_inventory_on_the_cpu():
    hw = Hardware(None, resolve_peaks(None, None, "the CPU"))
    assert all(v is None for k, v in hw.columns().items() if k.startswith("gpu_"))
    assert [c.name for c in inventory_checks(hw)] == ["gpu sku and peaks"]


# -- on a GPU ----------------------------------------------------------------------------------------------
@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_the_real_nvml_inventory_of_this_gpu():
    from harness.measure.hardware import detect_hardware

    device = torch.device("cuda", torch.cuda.current_device())
    hw = detect_hardware(device, None)
    inv = hw.inventory
    assert inv.nvml_name == torch.cuda.get_device_name(device)
    assert inv.sm_count == torch.cuda.get_device_properties(device).multi_processor_count
    assert inv.memory_bytes > 0 and inv.power_limit_w > 0 and inv.uuid.startswith("GPU-")
    assert inv.other_processes is not None
    known = ("H100", "H200", "L40S", "V100")
    if any(k in inv.nvml_name for k in known):
        assert hw.peaks.sku is not None and hw.peaks.source == "datasheet", hw.peaks.why
