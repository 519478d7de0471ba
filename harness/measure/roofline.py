"""Arithmetic intensity and the roofline verdict against a device's datasheet peaks (pure arithmetic, no
torch: the analysis package uses it too). The peaks (``spec``: harness.config.skus.PEAK_FIELDS) are the
detected SKU's (harness.config.skus.resolve_peaks), not the configured GPU type's."""

from __future__ import annotations

import math
from typing import Any

DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


# What each direction of a conv layer must read and write at least, named by the forward's tensors (the
# gradient of a tensor has its shape): backward_data reads grad_output and the weight and writes grad_input;
# backward_filter reads the input and grad_output and writes grad_weight. The bias (and its gradient, a
# reduction of grad_output) is left out in every direction, as the forward always left it out.
DIRECTION_OPERANDS = {
    "forward": {"reads": ("input", "weight"), "writes": ("output",)},
    "backward_data": {"reads": ("output", "weight"), "writes": ("input",)},
    "backward_filter": {"reads": ("input", "output"), "writes": ("weight",)},
}


def conv_bytes(in_shape: tuple[int, ...], out_shape: tuple[int, ...], weight_numel: int, dtype: str) -> int:
    """The least traffic of one conv layer's forward: its input, weights and output, each moved once."""
    return direction_bytes("forward", in_shape, out_shape, weight_numel, dtype)


def direction_bytes(
    direction: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...], weight_numel: int, dtype: str
) -> int:
    """The least traffic of one conv layer in ``direction`` (``DIRECTION_OPERANDS``), each tensor moved once.
    The three directions move tensors of the same three sizes, so the totals are equal; what is read and what
    is written differs."""
    if direction not in DIRECTION_OPERANDS:
        raise ValueError(f"unknown direction {direction!r}; valid: {', '.join(DIRECTION_OPERANDS)}")
    if dtype not in DTYPE_BYTES:
        raise ValueError(f"no bytes per element for dtype {dtype!r}; valid: {', '.join(DTYPE_BYTES)}")
    sizes = {"input": math.prod(in_shape), "weight": weight_numel, "output": math.prod(out_shape)}
    ops = DIRECTION_OPERANDS[direction]
    return sum(sizes[t] for t in ops["reads"] + ops["writes"]) * DTYPE_BYTES[dtype]


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
