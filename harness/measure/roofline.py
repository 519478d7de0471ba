"""Arithmetic intensity and the roofline verdict against a device's datasheet peaks (pure arithmetic, no
torch: the analysis package uses it too). The peaks (``spec``: harness.config.skus.PEAK_FIELDS) are the
detected SKU's (harness.config.skus.resolve_peaks), not the configured GPU type's."""

from __future__ import annotations

import math
from typing import Any

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def conv_bytes(in_shape: tuple[int, ...], out_shape: tuple[int, ...], weight_numel: int, dtype: str) -> int:
    """The least traffic of one conv layer: its input, weights and output, each moved once."""
    return (math.prod(in_shape) + weight_numel + math.prod(out_shape)) * DTYPE_BYTES[dtype]


def peak_tflops(spec: dict[str, Any] | None, dtype: str, math_type: str | None) -> float | None:
    """The datasheet peak that applies: FP16 for half types, TF32 for FP32 with tensor-op math, else FP32."""
    if not spec:
        return None
    if dtype in ("float16", "bfloat16"):
        return spec.get("fp16_tflops")
    if math_type == "tensor_op" and spec.get("tf32_tflops"):
        return spec["tf32_tflops"]
    return spec.get("fp32_tflops")


def verdict(
    flops: int | None, nbytes: int | None, spec: dict[str, Any] | None, dtype: str, math_type: str | None
) -> tuple[float | None, str | None]:
    """(arithmetic intensity in FLOP/byte, "compute" or "memory" bound; None where the spec is unknown)."""
    if not flops or not nbytes:
        return None, None
    intensity = flops / nbytes
    peak = peak_tflops(spec, dtype, math_type)
    bandwidth = spec.get("mem_bw_gbs") if spec else None
    if not peak or not bandwidth:
        return intensity, None
    ridge = peak * 1e12 / (bandwidth * 1e9)
    return intensity, "compute" if intensity >= ridge else "memory"


def fraction(work: Any, p50_ms: float | None, model_roofline: dict[str, Any]) -> float | None:
    """Achieved TFLOPS (FLOPs at the median latency) over the peak that applies; None where either is unknown."""
    peak = model_roofline.get("peak_tflops")
    if work is None or not peak or not p50_ms:
        return None
    return work.flops / (p50_ms / 1e3) / 1e12 / peak
