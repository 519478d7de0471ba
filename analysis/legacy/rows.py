"""One old CSV line as a row of our schema (points or layers), with its provenance and the old system's
known flaws that apply to it; a malformed line raises ``BadRow``.
"""

from __future__ import annotations

import math
from typing import Any

from analysis.legacy.flags import LAYER_FLAGS, POINT_FLAGS
from analysis.legacy.records import (
    BATCH_SIZE,
    CONFIG_HASH,
    DEVICE_NAMES,
    DTYPE,
    ENERGY_METHOD,
    N_ITERATIONS,
    STAGE,
    Combo,
)
from harness.algorithms import canonical_name
from harness.errors import ConfigError
from harness.results.schema import SCHEMA_VERSION


class BadRow(ValueError):
    pass


def number(row: dict[str, str], key: str, positive: bool = False) -> float:
    text = row[key]
    try:
        v = float(text)
    except ValueError:
        raise BadRow(f"{key}={text!r} is not a number") from None
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise BadRow(f"{key}={text!r} is not a {'positive' if positive else 'non-negative'} finite number")
    return v


def integer(row: dict[str, str], key: str) -> int:
    v = number(row, key)
    if v != int(v):
        raise BadRow(f"{key}={row[key]!r} is not an integer")
    return int(v)


def _trace(model: str, size: int, batch: int) -> Any:
    """analysis.layers.trace, imported on first use: tracing needs torch, importing this module does not (the
    analysis imports it). Every imported row is traced, so an import without torch fails here, loudly: the
    callers let an ImportError through rather than count it as a size the architecture refuses."""
    from analysis import layers

    return layers.trace(model, size, batch)


def check_identity(row: dict[str, str], combo: Combo) -> None:
    """The row's model, algorithm and device agree with its file name."""
    try:
        algo = canonical_name(row["algorithm"])
    except ConfigError:
        raise BadRow(f"unknown algorithm {row['algorithm']!r}") from None
    if algo != combo.algo:
        raise BadRow(f"algorithm {row['algorithm']!r} in a file of {combo.algo}")
    if row["model"] != combo.model:
        raise BadRow(f"model {row['model']!r} in a file of {combo.model}")
    if row["device"].lower() != combo.gpu:
        raise BadRow(f"device {row['device']!r} in a file of {combo.gpu}")


def flags_for(base: list[str], combo: Combo) -> list[str]:
    return base + (["algo_is_heuristic_choice"] if combo.algo == "implicit_gemm" else [])


# -- rows ------------------------------------------------------------------------------------------------
def point_row(row: dict[str, str], combo: Combo, provenance: str) -> dict[str, Any]:
    """One overall row as a points row. BadRow if a value is malformed."""
    check_identity(row, combo)
    size, batch = integer(row, "input_size"), integer(row, "batch_size")
    if size <= 0 or batch <= 0:
        raise BadRow(f"input_size {size} / batch_size {batch} must be positive")
    mean, std, lo, hi, med = (number(row, k, positive=k != "std") for k in ("mean", "std", "min", "max", "median"))
    if not lo <= med <= hi or not lo <= mean <= hi:
        raise BadRow(f"min {lo} <= median {med}, mean {mean} <= max {hi} does not hold")
    power, energy, total = (number(row, k) for k in ("power_mean_w", "energy_per_inference_j", "energy_total_j"))
    try:
        tr = _trace(combo.model, size, batch)
    except ImportError:
        raise
    except Exception as e:  # noqa: BLE001 - a size the architecture refuses
        raise BadRow(f"cannot trace {combo.model} at input size {size}: {type(e).__name__}: {e}") from None
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": combo.run_id,
        "stage": STAGE,
        "model": combo.model,
        "algo": combo.algo,
        "gpu": combo.gpu,
        "device": "cuda",
        "device_name": DEVICE_NAMES.get(combo.gpu),
        "input_size": size,
        "batch_size": batch,
        "dtype": DTYPE,
        "status": "ok",
        "backend": "cudnn",
        "n": N_ITERATIONS,
        "mean_ms": mean,
        "std_ms": std,
        "cv": std / mean,
        "min_ms": lo,
        "p50_ms": med,
        "max_ms": hi,
        "throughput_ips": batch / (mean / 1e3),
        "flops": tr.flops,
        "params": tr.params,
        "energy_per_inference_j": energy,
        "energy_method": ENERGY_METHOD,
        "energy_window_s": total / power if power > 0 else None,
        "energy_inferences": round(total / energy) if energy > 0 else None,
        "power_mean_w": power,
        "conv_layers": len(tr.layers),
        "config_hash": CONFIG_HASH,
        "provenance": provenance,
        "legacy_flags": flags_for(list(POINT_FLAGS), combo),
        "power_std_w": number(row, "power_std_w"),
        "power_min_w": number(row, "power_min_w"),
        "power_max_w": number(row, "power_max_w"),
        "power_samples": integer(row, "power_samples"),
        "energy_total_j": total,
    }


def layer_row(row: dict[str, str], combo: Combo, provenance: str) -> dict[str, Any] | str:
    """One layer row as a layers row; a string (why) when the layer matches no traced conv."""
    check_identity(row, combo)
    size = integer(row, "input_size")
    if size <= 0:
        raise BadRow(f"input_size {size} must be positive")
    geo_legacy = {k: integer(row, k) for k in ("in_channels", "out_channels", "kernel_size", "stride", "padding")}
    mean, std, pct = number(row, "mean_ms"), number(row, "std_ms"), number(row, "percentage")
    name = row["layer"]
    try:
        tr = _trace(combo.model, size, BATCH_SIZE)
    except ImportError:
        raise
    except Exception as e:  # noqa: BLE001 - a size the architecture refuses
        return f"cannot trace {combo.model} at {size}: {type(e).__name__}: {e}"
    layer = tr.layers.get(name)
    if layer is None:
        return f"no conv module {name!r} in torchvision's {combo.model}"
    g = layer.geometry
    ours = {
        "in_channels": g["in_channels"],
        "out_channels": g["out_channels"],
        "kernel_size": g["kernel_h"],
        "stride": g["stride_h"],
        "padding": g["pad_h"],
    }
    square = g["kernel_h"] == g["kernel_w"] and g["stride_h"] == g["stride_w"] and g["pad_h"] == g["pad_w"]
    if ours != geo_legacy or not square:
        return f"{name}: old geometry {geo_legacy} differs from torchvision's {g}"
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": combo.run_id,
        "stage": STAGE,
        "model": combo.model,
        "algo": combo.algo,
        "gpu": combo.gpu,
        "device_name": DEVICE_NAMES.get(combo.gpu),
        "input_size": size,
        "batch_size": BATCH_SIZE,
        "dtype": DTYPE,
        "layer_index": layer.index,
        "layer_name": name,
        **g,
        "in_h": layer.in_shape[2],
        "in_w": layer.in_shape[3],
        "out_h": layer.out_shape[2],
        "out_w": layer.out_shape[3],
        "algo_requested": combo.algo,
        "algo_used": None,
        "backend": "cudnn",
        "status": "ok",
        "mean_ms": mean,
        "std_ms": std,
        "flops": layer.flops,
        "bytes": layer.bytes,
        "arithmetic_intensity": layer.flops / layer.bytes,
        "provenance": provenance,
        "legacy_flags": flags_for(list(LAYER_FLAGS), combo),
        "legacy_percentage": pct,
    }
