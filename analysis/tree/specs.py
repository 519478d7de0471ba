"""GPU datasheet numbers (peak TFLOPS, memory bandwidth, TDP) for the predictor's features and the roofline.

First from what the store wrote (a run's manifest, ``run-*.json``, holds its resolved config,
``config.gpu.spec``; read with harness.results.manifest),
then from ``conf/gpu/<gpu>.yaml``; None where neither knows (``gpu=local``: a CPU or an unknown device).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path

from harness.config.gpus import gpu_type as load_gpu_type
from harness.config.groups import CONF_DIR
from harness.errors import ConfigError
from harness.results import layout
from harness.results.manifest import read_manifest

log = logging.getLogger(__name__)

SPEC_FIELDS = ("fp32_tflops", "tf32_tflops", "fp16_tflops", "mem_bw_gbs", "tdp_w")
Spec = dict[str, float | None]


def _from_runs(root: Path, gpu: str) -> Spec | None:
    for path in layout.run_files_under(root, gpu=gpu):
        try:
            spec = read_manifest(path).config["gpu"]["spec"]
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
    spec = gpu_type.spec if gpu_type else None
    return {k: spec.get(k) for k in SPEC_FIELDS} if spec else None


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
