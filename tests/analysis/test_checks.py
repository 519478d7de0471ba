"""Warnings worth a reader's attention, each triggered by a row that deserves it and by no other."""

from __future__ import annotations

import pandas as pd

from analysis.checks import Thresholds, findings, summary


def _points() -> pd.DataFrame:
    base = dict(
        stage="s",
        gpu="h100",
        model="m",
        algo="gemm",
        batch_size=1,
        status="ok",
        error=None,
        cv=0.01,
        throttle_reasons="none",
        verified=True,
        max_rel_err=1e-6,
        energy_method="nvml_counter",
        energy_window_s=5.0,
        target_met=True,
        n=30,
        device_name="NVIDIA H100",
    )
    rows = [
        base | {"input_size": 1},
        base | {"input_size": 2, "cv": 0.2},
        base | {"input_size": 3, "throttle_reasons": "GpuIdle,SwThermalSlowdown"},
        base | {"input_size": 4, "throttle_reasons": "GpuIdle"},
        base
        | {
            "input_size": 5,
            "status": "error",
            "verified": False,
            "max_rel_err": 0.5,
            "error": "verification failed: ...",
            "cv": None,
        },
        base | {"input_size": 6, "energy_window_s": 0.3},
        base | {"input_size": 7, "energy_window_s": 0.3, "energy_method": "none"},
        base | {"input_size": 8, "target_met": False},
    ]
    return pd.DataFrame(rows)


def test_each_finding_names_its_point():
    found = findings(_points(), limits=Thresholds(cv=0.05, energy_window_s=1.0))
    by_kind = {k: sorted(g["input_size"].astype(int)) for k, g in found.groupby("kind")}
    assert by_kind == {
        "high cv": [2],
        "throttling": [3],
        "verification failed": [5],
        "energy window short": [6],
        "CI target not met": [8],
    }
    assert "SwThermalSlowdown" in found.loc[found["kind"] == "throttling", "detail"].iloc[0]
    s = summary(found)
    assert dict(zip(s["kind"], s["count"])) == {k: 1 for k in by_kind}


def test_thresholds_are_respected():
    found = findings(_points(), limits=Thresholds(cv=0.5, energy_window_s=0.1))
    assert "high cv" not in set(found["kind"]) and "energy window short" not in set(found["kind"])


def test_one_gpu_type_on_several_devices():
    p = _points()
    p.loc[0, "device_name"] = "NVIDIA H100 PCIe"
    found = findings(p)
    assert (found["kind"] == "several devices").sum() == 1
    assert "NVIDIA H100 PCIe" in found.loc[found["kind"] == "several devices", "detail"].iloc[0]
