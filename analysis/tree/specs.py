"""GPU datasheet numbers (peak TFLOPS, memory bandwidth, TDP) for the predictor's features and the roofline.

First from what the store wrote, read with harness.results.manifest: a run's manifest, ``run-*.json``, holds the
peaks its device was measured against (``hardware.peaks``: the detected SKU's, harness.config.skus); a manifest
older than that, the resolved config's ``config.gpu.spec``. Then, for a GPU type no tree has measured, its
``conf/gpu/<gpu>.yaml`` (``gpu.spec`` fields set there) or the one SKU of conf/skus.yaml its name can be (l40s);
None where none is known: a CPU, or a type that is several SKUs (h100: SXM, NVL or PCIe) until a run says which.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.config.gpus import gpu_type as load_gpu_type
from harness.config.groups import CONF_DIR
from harness.config.skus import load_skus, overrides
from harness.errors import ConfigError
from harness.results import layout
from harness.results.manifest import read_manifest

log = logging.getLogger(__name__)

SPEC_FIELDS = ("fp32_tflops", "tf32_tflops", "fp16_tflops", "mem_bw_gbs", "tdp_w")
Spec = dict[str, float | None]


def _from_runs(root: Path, gpu: str) -> Spec | None:
    for path in layout.run_files_under(root, gpu=gpu):
        try:
            manifest = read_manifest(path)
            if manifest.hardware is not None:  # the peaks the run used: its detected device's
                spec = manifest.hardware["peaks"]["spec"]
                return {k: spec.get(k) for k in SPEC_FIELDS} if spec else None
            spec = manifest.config["gpu"]["spec"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if spec:
            return {k: spec.get(k) for k in SPEC_FIELDS}
        return None  # the run says: no spec for this gpu type
    return None


def _from_conf(gpu: str, conf_dir: Path) -> Spec | None:
    try:
        gpu_type = load_gpu_type(gpu, conf_dir)
    except ConfigError as e:
        log.warning("%s", e)
        return None
    if gpu_type is None:
        return None
    given = overrides(gpu_type.spec)
    if given:
        return {k: given.get(k) for k in SPEC_FIELDS}
    if gpu_type.nvml_name is None:
        return None
    try:
        skus = [s for s in load_skus(conf_dir) if any(gpu_type.nvml_name.lower() in n.lower() for n in s.nvml_names)]
    except ConfigError as e:
        log.warning("%s", e)
        return None
    if len(skus) == 1:
        return {k: skus[0].peaks.get(k) for k in SPEC_FIELDS}
    log.info(
        "gpu=%s: no peaks before a run says which SKU it is (%s)", gpu, ", ".join(s.key for s in skus) or "none known"
    )
    return None


def gpu_specs(
    roots: str | Path | Sequence[str | Path], gpus: Iterable[str], conf_dir: Path = CONF_DIR
) -> dict[str, Spec | None]:
    """Each gpu type's datasheet: from the first tree whose runs name it, else from conf/gpu/."""
    roots = [Path(roots)] if isinstance(roots, (str, Path)) else [Path(r) for r in roots]
    out: dict[str, Spec | None] = {}
    for gpu in sorted(set(gpus)):
        with_runs = [r for r in roots if next(layout.run_files_under(r, gpu=gpu), None)]
        out[gpu] = _from_runs(with_runs[0], gpu) if with_runs else _from_conf(gpu, conf_dir)
    return out
